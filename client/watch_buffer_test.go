package client

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/arbor-db/arbor/client/wire"
)

// A watch holds up to its buffer of undelivered events, overflows at one
// more, and its consumer still gets every event before the overflow, in
// order, then the close; events of the fast path count as any other.
func TestWatcherBufferOverflow(t *testing.T) {
	const buffer = 100
	w := &Watcher{path: "/w", ch: make(chan WatchEvent, buffer)}
	for i := range buffer {
		if w.deliverChange(nil, EventData, "/w", uint64(i+1), []byte{byte(i)}) {
			t.Fatalf("watch ended at event %d of a buffer of %d", i+1, buffer)
		}
	}
	if !w.deliverChange(nil, EventData, "/w", buffer+1, nil) {
		t.Fatal("event past the buffer did not end the watch")
	}
	if err := w.Err(); err != ErrWatchOverflow {
		t.Fatalf("Err = %v, want ErrWatchOverflow", err)
	}
	for i := range buffer {
		ev, ok := <-w.ch
		if !ok || ev.Zxid != uint64(i+1) || ev.Data[0] != byte(i) {
			t.Fatalf("event %d: %+v ok %v", i, ev, ok)
		}
	}
	if ev, ok := <-w.ch; ok {
		t.Fatalf("event after the buffered ones: %+v", ev)
	}
}

// The fast decoder agrees with the general one on every frame it takes,
// and takes every watch event a member sends (json.Marshal of wire.Event
// with a path without escapes).
func TestDecodeWatchEvent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{wire.WatchCreated, wire.WatchDeleted, wire.WatchData, wire.WatchChildren}
	var frames [][]byte
	for i := range 2000 {
		ev := wire.Event{Event: wire.EventWatch, Watch: rng.Uint64N(1 << 40), Type: types[i%4],
			Path: "/n/" + fmt.Sprint(rng.Uint32()), Zxid: rng.Uint64()}
		if i%3 == 0 {
			ev.Data = make([]byte, rng.IntN(300))
			for j := range ev.Data {
				ev.Data[j] = byte(rng.Uint32())
			}
		}
		b, _ := json.Marshal(&ev)
		frames = append(frames, b)
	}
	taken := len(frames)
	frames = append(frames,
		[]byte(`{"event":"watch","watch":1,"type":"data","path":"/\u00e9t\u00e9","zxid":2}`), // escapes: general decoder
		[]byte(`{"event":"watch","watch":1,"type":"data","path":"/été","zxid":2}`),
		[]byte(`{"event":"watch","watch":1,"type":"data","path":"/a","zxid":2,"data":"!!"}`),
		[]byte(`{"event":"watch","watch":1,"type":"data","path":"/a","zxid":2,"extra":1}`),
		[]byte(`{"event":"watch","watch":01,"type":"data","path":"/a","zxid":2}`),
		[]byte(`{"event":"watch","watch":1,"type":"other","path":"/a","zxid":2}`),
		[]byte(`{"event":"watch","watch":1,"path":"/a","type":"data","zxid":2}`),
		[]byte(`{"event":"watch","watch":18446744073709551616,"type":"data","path":"/a","zxid":2}`),
		[]byte(`{"event":"session","state":"expired"}`),
		[]byte(`{"id":3,"ok":true}`),
	)
	for i, f := range frames {
		id, typ, path, zxid, data, ok := decodeWatchEvent(f)
		if i < taken && !ok {
			t.Fatalf("fast path refused a member's frame %s", f)
		}
		if !ok {
			continue
		}
		var r wire.Response
		if err := json.Unmarshal(f, &r); err != nil {
			t.Fatalf("fast path took %s, which does not decode: %v", f, err)
		}
		want := WatchEvent{Type: eventType(r.Type), Path: r.Path, Zxid: r.Zxid, Data: r.Data}
		got := WatchEvent{Type: typ, Path: path, Zxid: zxid, Data: data}
		if id != r.Watch || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: fast %d %+v, general %d %+v", f, id, got, r.Watch, want)
		}
	}
}
