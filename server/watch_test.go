package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// until sends raw (a request with id) and reads frames until its response:
// it returns the events that came before it, and the response.
func (c *wsClient) until(raw string) ([]wire.Response, wire.Response) {
	c.t.Helper()
	var req struct{ ID uint64 }
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		c.t.Fatalf("until %s: %v", raw, err)
	}
	c.send(raw)
	var evs []wire.Response
	for {
		r := c.recv()
		if r.Event != "" {
			evs = append(evs, r)
			continue
		}
		if r.ID != req.ID {
			c.t.Fatalf("%s: answer to %d came first: %+v", raw, r.ID, r)
		}
		return evs, r
	}
}

// ok is until for a request that must succeed.
func (c *wsClient) ok(raw string) ([]wire.Response, wire.Response) {
	c.t.Helper()
	evs, r := c.until(raw)
	if !r.OK {
		c.t.Fatalf("%s: %+v", raw, r.Error)
	}
	return evs, r
}

// eventStrings renders watch events as "type:path" (and "=data").
func eventStrings(evs []wire.Response) []string {
	var out []string
	for _, e := range evs {
		s := e.Type + ":" + e.Path
		if e.Event != wire.EventWatch {
			s = e.Event
		}
		if e.Data != nil {
			s += "=" + string(e.Data)
		}
		out = append(out, s)
	}
	return out
}

func data(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Every one-shot rule, against a live member; the watching connection's
// next read observes the change, and the event must come before that
// read's answer. Each case runs many times: the writer picks between a
// ready response and ready events at random, so a writer that did not send
// events first would fail this quickly.
func TestOneShotWatchRules(t *testing.T) {
	ts := startFake(t, nil)
	a, b := helloed(t, ts.addr), helloed(t, ts.addr)
	tests := []struct {
		name    string
		setup   []string // on b, before the watch
		read    string   // on a: the read that sets the watch (path filled in)
		trigger string   // on b: fires it
		again   string   // on b: would fire it again, had it not ended
		want    string   // "type:path"
	}{
		{"get: set", []string{`"op":"create","path":"P"`}, `"op":"get","path":"P"`, `"op":"set","path":"P"`, `"op":"set","path":"P"`, "data:P"},
		{"get: delete", []string{`"op":"create","path":"P"`}, `"op":"get","path":"P"`, `"op":"delete","path":"P"`, `"op":"create","path":"P"`, "deleted:P"},
		{"exists: create", nil, `"op":"exists","path":"P"`, `"op":"create","path":"P"`, `"op":"set","path":"P"`, "created:P"},
		{"exists: set", []string{`"op":"create","path":"P"`}, `"op":"exists","path":"P"`, `"op":"set","path":"P"`, `"op":"delete","path":"P"`, "data:P"},
		{"exists: delete", []string{`"op":"create","path":"P"`}, `"op":"exists","path":"P"`, `"op":"delete","path":"P"`, `"op":"create","path":"P"`, "deleted:P"},
		{"children: create", []string{`"op":"create","path":"P"`}, `"op":"children","path":"P"`, `"op":"create","path":"P/c"`, `"op":"create","path":"P/d"`, "children:P"},
		{"children: delete child", []string{`"op":"create","path":"P"`, `"op":"create","path":"P/c"`}, `"op":"children","path":"P"`, `"op":"delete","path":"P/c"`, `"op":"delete","path":"P"`, "children:P"},
		{"children: delete node", []string{`"op":"create","path":"P"`}, `"op":"children","path":"P"`, `"op":"delete","path":"P"`, `"op":"create","path":"P"`, "deleted:P"},
	}
	id := 100
	req := func(body, path string) string {
		id++
		return fmt.Sprintf(`{"id":%d,%s}`, id, strings.ReplaceAll(body, "P", path))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.t, b.t = t, t
			for round := range 20 {
				p := fmt.Sprintf("/r%d-%d", i, round)
				for _, s := range tt.setup {
					b.ok(req(s, p))
				}
				_, r := a.ok(req(tt.read+`,"watch":true`, p))
				if r.Watch == 0 {
					t.Fatalf("read with watch answered no watch id: %+v", r)
				}
				_, tr := b.ok(req(tt.trigger, p))
				// The next read of a observes the trigger: its event first.
				evs, rr := a.ok(req(`"op":"exists","path":"/","local":true`, p))
				if rr.Zxid < tr.Zxid {
					t.Fatalf("read at zxid %d after the trigger at %d", rr.Zxid, tr.Zxid)
				}
				want := strings.ReplaceAll(tt.want, "P", p)
				if got := eventStrings(evs); !slices.Equal(got, []string{want}) {
					t.Fatalf("round %d: events before the read %q, want [%s]", round, got, want)
				}
				if evs[0].Watch != r.Watch || evs[0].Zxid != tr.Zxid || evs[0].Data != nil {
					t.Fatalf("event %+v: want watch %d, zxid %d, no data", evs[0], r.Watch, tr.Zxid)
				}
				// One-shot: nothing more, and unwatch no longer knows it.
				b.ok(req(tt.again, p))
				if evs, _ := a.ok(req(`"op":"exists","path":"/"`, p)); len(evs) != 0 {
					t.Fatalf("one-shot fired again: %q", eventStrings(evs))
				}
				if _, r := a.until(fmt.Sprintf(`{"id":%d,"op":"unwatch","watch":%d}`, id+1000000, r.Watch)); r.Error == nil || r.Error.Code != wire.CodeBadRequest {
					t.Fatalf("unwatch of a fired watch: %+v", r)
				}
			}
		})
	}
	// A read that fails sets no watch.
	a.t = t
	if _, r := a.until(`{"id":1,"op":"get","path":"/nothing","watch":true}`); r.Error == nil || r.Error.Code != wire.CodeNoNode || r.Watch != 0 {
		t.Fatalf("get of a missing node with watch: %+v", r)
	}
}

// A write's answer on the watching connection comes after the events of
// its own change.
func TestWatchEventBeforeOwnWrite(t *testing.T) {
	ts := startFake(t, nil)
	a := helloed(t, ts.addr)
	a.ok(`{"id":2,"op":"create","path":"/a"}`)
	_, w := a.ok(`{"id":3,"op":"watch","path":"/a"}`)
	for i := range 50 {
		evs, r := a.ok(fmt.Sprintf(`{"id":%d,"op":"set","path":"/a","data":%q}`, 10+i, data(fmt.Sprint(i))))
		if got := eventStrings(evs); !slices.Equal(got, []string{fmt.Sprintf("data:/a=%d", i)}) || evs[0].Zxid != r.Zxid || evs[0].Watch != w.Watch {
			t.Fatalf("set %d: events before its answer %q %+v", i, got, evs)
		}
	}
}

func TestPersistentAndRecursiveWatches(t *testing.T) {
	ts := startFake(t, nil)
	a, b := helloed(t, ts.addr), helloed(t, ts.addr)
	_, p := a.ok(`{"id":2,"op":"watch","path":"/a"}`)
	_, rw := a.ok(`{"id":3,"op":"watch","path":"/a","recursive":true}`)
	b.ok(`{"id":2,"op":"create","path":"/a","data":"` + data("1") + `"}`)
	b.ok(`{"id":3,"op":"create","path":"/a/b","data":"` + data("2") + `"}`)
	b.ok(`{"id":4,"op":"set","path":"/a/b","data":"` + data("3") + `"}`)
	b.ok(`{"id":5,"op":"create","path":"/ab"}`)
	b.ok(`{"id":6,"op":"multi","ops":[{"op":"set","path":"/a","data":"` + data("4") + `"},{"op":"delete","path":"/a/b"}]}`)
	b.ok(`{"id":7,"op":"delete","path":"/a"}`)
	evs, _ := a.ok(`{"id":4,"op":"sync"}`)
	var gotP, gotR []wire.Response
	for _, e := range evs {
		switch e.Watch {
		case p.Watch:
			gotP = append(gotP, e)
		case rw.Watch:
			gotR = append(gotR, e)
		default:
			t.Fatalf("event of an unknown watch: %+v", e)
		}
	}
	if got, want := eventStrings(gotP), []string{"created:/a=1", "children:/a", "data:/a=4", "children:/a", "deleted:/a"}; !slices.Equal(got, want) {
		t.Errorf("persistent: %q, want %q", got, want)
	}
	if got, want := eventStrings(gotR), []string{"created:/a=1", "created:/a/b=2", "data:/a/b=3", "data:/a=4", "deleted:/a/b", "deleted:/a"}; !slices.Equal(got, want) {
		t.Errorf("recursive: %q, want %q", got, want)
	}
	// The multi's events share its one zxid; zxids never go back.
	var last uint64
	for _, e := range gotR {
		if e.Zxid < last {
			t.Fatalf("zxid went back: %+v", gotR)
		}
		last = e.Zxid
	}
	if gotR[3].Zxid != gotR[4].Zxid {
		t.Errorf("multi events at zxids %d and %d", gotR[3].Zxid, gotR[4].Zxid)
	}
	// unwatch ends it; an id of another connection is refused.
	a.ok(`{"id":5,"op":"unwatch","watch":` + fmt.Sprint(p.Watch) + `}`)
	if _, r := b.until(`{"id":8,"op":"unwatch","watch":` + fmt.Sprint(rw.Watch) + `}`); r.Error == nil || r.Error.Code != wire.CodeBadRequest {
		t.Fatalf("unwatch of another connection's watch: %+v", r)
	}
	b.ok(`{"id":9,"op":"create","path":"/a"}`)
	evs, _ = a.ok(`{"id":6,"op":"sync"}`)
	if got := eventStrings(evs); !slices.Equal(got, []string{"created:/a"}) || evs[0].Watch != rw.Watch {
		t.Fatalf("after unwatch of the persistent watch: %q", got)
	}
}

// since replays every change after it, after the response; a since older
// than the history gets a resync, split within the frame limit, then the
// changes after it.
func TestWatchSinceReplayAndResync(t *testing.T) {
	ts := startFake(t, func(cfg *Config) {
		cfg.WatchHistoryEvents = 6
		cfg.MaxFrameBytes, cfg.MaxDataBytes = 4096, 1024
	})
	// The member's own /arbor/members record is written once it is up; in
	// a six-event history it must not land among the changes below.
	waitReady(t, ts.addr)
	a, b := helloed(t, ts.addr), helloed(t, ts.addr)
	_, base := b.ok(`{"id":2,"op":"create","path":"/s"}`)
	big := data(strings.Repeat("x", 1000))
	for i := range 3 {
		b.ok(fmt.Sprintf(`{"id":%d,"op":"create","path":"/s/%d","data":%q}`, 10+i, i, big))
	}
	// Replay: the three creates (and the children events of /s).
	_, w := a.ok(fmt.Sprintf(`{"id":2,"op":"watch","path":"/s","recursive":true,"since":%d}`, base.Zxid))
	evs, _ := a.ok(`{"id":3,"op":"sync"}`)
	if len(evs) != 3 || evs[0].Path != "/s/0" || evs[2].Path != "/s/2" || evs[0].Watch != w.Watch || string(evs[1].Data) != strings.Repeat("x", 1000) {
		t.Fatalf("replay since %d: %q", base.Zxid, eventStrings(evs))
	}
	// Push the history past base: six events (three zxids) are held.
	for i := range 3 {
		b.ok(fmt.Sprintf(`{"id":%d,"op":"set","path":"/s/%d","data":%q}`, 20+i, i, big))
	}
	b.ok(`{"id":30,"op":"create","path":"/t"}`)
	_, w2 := a.ok(fmt.Sprintf(`{"id":4,"op":"watch","path":"/s","recursive":true,"since":%d}`, base.Zxid))
	_, live := b.ok(`{"id":31,"op":"create","path":"/s/new"}`)
	evs, _ = a.ok(`{"id":5,"op":"sync"}`)
	var nodes []string
	var chunks int
	var after []wire.Response
	for _, e := range evs {
		switch {
		case e.Watch != w2.Watch:
			continue // the first watch's live events
		case e.Event == wire.EventResync:
			if after != nil || e.Zxid != w2.Zxid {
				t.Fatalf("resync chunk %+v after live events or not at the watch's zxid %d", e, w2.Zxid)
			}
			chunks++
			for _, n := range e.Nodes {
				nodes = append(nodes, n.Path)
			}
			if e.Last != (len(nodes) == 4) {
				t.Fatalf("chunk %d: last = %v with %d nodes so far", chunks, e.Last, len(nodes))
			}
		default:
			after = append(after, e)
		}
	}
	if want := []string{"/s", "/s/0", "/s/1", "/s/2"}; !slices.Equal(nodes, want) || chunks < 2 {
		t.Fatalf("resync nodes %q in %d chunks, want %q in several", nodes, chunks, want)
	}
	if got := eventStrings(after); !slices.Equal(got, []string{"created:/s/new"}) || after[0].Zxid != live.Zxid {
		t.Fatalf("after the resync: %q", got)
	}
	// Raw: "last" and "nodes" are always present, as PROTOCOL.md shows.
	a.send(`{"id":6,"op":"watch","path":"/missing","since":1}`)
	var raw map[string]any
	for {
		b := a.recvRaw()
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["event"] == "resync" {
			break
		}
	}
	if raw["last"] != true || raw["nodes"] == nil || len(raw["nodes"].([]any)) != 0 {
		t.Fatalf("resync of a missing node: %v", raw)
	}
}

// A connection whose queued events pass the bound is closed with a reason
// (and counted); resuming the session elsewhere with since loses nothing.
func TestWatchOverflowClosesAndResumeLosesNothing(t *testing.T) {
	ts := startFake(t, func(cfg *Config) { cfg.MaxQueuedEventBytes = 2000 })
	a := dial(t, ts.addr)
	h := a.call(`{"id":1,"op":"hello","timeout_ms":10000}`)
	b := helloed(t, ts.addr)
	_, w := a.ok(`{"id":2,"op":"watch","path":"/o","recursive":true}`)
	_, first := b.ok(`{"id":2,"op":"create","path":"/o"}`)
	// Read the first event, so the client knows where it stands.
	evs, _ := a.ok(`{"id":3,"op":"sync"}`)
	if len(evs) != 1 || evs[0].Zxid != first.Zxid {
		t.Fatalf("first event: %q", eventStrings(evs))
	}
	seen := evs[0].Zxid
	// One multi whose events together pass the byte bound.
	big := data(strings.Repeat("y", 600))
	var ops []string
	for i := range 4 {
		ops = append(ops, fmt.Sprintf(`{"op":"create","path":"/o/%d","data":%q}`, i, big))
	}
	_, m := b.ok(`{"id":3,"op":"multi","ops":[` + strings.Join(ops, ",") + `]}`)
	_ = a.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	for {
		_, _, err := a.ws.ReadMessage()
		if err == nil {
			continue
		}
		if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater || ce.Text != closeOverflow {
			t.Fatalf("overflowing connection: %v, want close 1013 %q", err, closeOverflow)
		}
		break
	}
	if n := metricValue(t, ts, "arbor_watch_slow_connections_closed_total"); n != 1 {
		t.Fatalf("slow connections closed: %v", n)
	}
	// Resume, and register again since the last event seen.
	c := dial(t, ts.addr)
	if r := c.call(fmt.Sprintf(`{"id":1,"op":"hello","session":%q,"secret":%q,"last_zxid":%d}`, h.Session, h.Secret, seen)); !r.OK {
		t.Fatalf("resume: %+v", r.Error)
	}
	_, w2 := c.ok(fmt.Sprintf(`{"id":2,"op":"watch","path":"/o","recursive":true,"since":%d}`, seen))
	evs, _ = c.ok(`{"id":3,"op":"sync"}`)
	if got := len(evs); got != 4 || evs[0].Zxid != m.Zxid || evs[0].Watch != w2.Watch || evs[3].Path != "/o/3" {
		t.Fatalf("replay after overflow: %q", eventStrings(evs))
	}
	_ = w
}

func TestWatchLimit(t *testing.T) {
	ts := startFake(t, func(cfg *Config) { cfg.MaxWatchesPerSession = 2 })
	a := helloed(t, ts.addr)
	a.ok(`{"id":2,"op":"watch","path":"/"}`)
	a.ok(`{"id":3,"op":"exists","path":"/x","watch":true}`)
	for _, req := range []string{`{"id":4,"op":"watch","path":"/"}`, `{"id":5,"op":"get","path":"/","watch":true}`} {
		if _, r := a.until(req); r.Error == nil || r.Error.Code != wire.CodeTooLarge || !strings.Contains(r.Error.Message, "watches") {
			t.Fatalf("%s beyond the limit: %+v", req, r)
		}
	}
	if n := metricValue(t, ts, "arbor_limit_refusals_total", "limit=watches"); n != 2 {
		t.Fatalf("watch limit refusals: %v", n)
	}
}

func metricValue(t *testing.T, ts *testServer, name string, labels ...string) float64 {
	t.Helper()
	v, _ := sample(scrape(t, ts.addr), name, labels...)
	return v
}

// A member that restores a snapshot has no events for the changes it
// skipped: it closes the connections that watch, and a watch registered
// again since a zxid before the snapshot gets a resync.
func TestRestoreDropsWatches(t *testing.T) {
	ts := startFake(t, nil)
	a := dial(t, ts.addr)
	h := a.call(`{"id":1,"op":"hello","timeout_ms":10000}`)
	_, w := a.ok(`{"id":2,"op":"watch","path":"/r","recursive":true}`)
	_, cr := a.ok(`{"id":3,"op":"create","path":"/r","data":"` + data("v") + `"}`)
	var snap strings.Builder
	if err := ts.srv.sm.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.sm.Restore(cr.Zxid, strings.NewReader(snap.String())); err != nil {
		t.Fatal(err)
	}
	_ = a.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	for {
		_, _, err := a.ws.ReadMessage()
		if err == nil {
			continue
		}
		if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater || ce.Text != closeWatchesLost {
			t.Fatalf("watching connection after a restore: %v", err)
		}
		break
	}
	c := dial(t, ts.addr)
	if r := c.call(fmt.Sprintf(`{"id":1,"op":"hello","session":%q,"secret":%q}`, h.Session, h.Secret)); !r.OK {
		t.Fatalf("resume: %+v", r.Error)
	}
	_, w2 := c.ok(fmt.Sprintf(`{"id":2,"op":"watch","path":"/r","recursive":true,"since":%d}`, w.Zxid))
	evs, _ := c.ok(`{"id":3,"op":"sync"}`)
	if len(evs) != 1 || evs[0].Event != wire.EventResync || !evs[0].Last || len(evs[0].Nodes) != 1 || string(evs[0].Nodes[0].Data) != "v" || evs[0].Watch != w2.Watch {
		t.Fatalf("after the restore: %+v", evs)
	}
}

// A connection whose watches a restore drops must answer nothing at the
// restored zxid or above: its client takes an answer's zxid as proof that
// the watch's events up to it were sent, so it would register the watch
// again after the changes the restore skipped, with no resync to cover
// them. The read is sent while the restore still runs (in onRestore,
// after the new state is in place) and must go unanswered.
func TestRestoreAnswersNothingAtItsZxidOnWatchingConnections(t *testing.T) {
	ts := startFake(t, nil)
	a := helloed(t, ts.addr)
	a.ok(`{"id":2,"op":"watch","path":"/r","recursive":true}`)
	_, cr := a.ok(`{"id":3,"op":"create","path":"/r"}`)
	var snap strings.Builder
	if err := ts.srv.sm.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	restoredAt := cr.Zxid + 50

	type outcome struct {
		answer *wire.Response
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		_ = a.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, b, err := a.ws.ReadMessage()
			if err != nil {
				done <- outcome{err: err}
				return
			}
			var r wire.Response
			if json.Unmarshal(b, &r) == nil && r.ID == 4 {
				done <- outcome{answer: &r}
				return
			}
		}
	}()
	var got outcome
	onRestore := ts.srv.sm.onRestore
	ts.srv.sm.onRestore = func() {
		if err := a.ws.WriteMessage(websocket.TextMessage, []byte(`{"id":4,"op":"exists","path":"/","local":true}`)); err != nil {
			t.Errorf("send: %v", err)
		}
		got = <-done
		onRestore()
	}
	if err := ts.srv.sm.Restore(restoredAt, strings.NewReader(snap.String())); err != nil {
		t.Fatal(err)
	}
	if got.answer != nil {
		t.Fatalf("a connection whose watches the restore at %d dropped answered at zxid %d: %+v", restoredAt, got.answer.Zxid, got.answer)
	}
	var ce *websocket.CloseError
	if !errors.As(got.err, &ce) || ce.Code != websocket.CloseTryAgainLater || ce.Text != closeWatchesLost {
		t.Fatalf("watching connection during a restore: %v", got.err)
	}
}
