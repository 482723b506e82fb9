package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest"
)

// After Sync answers Z, every event of the watch up to Z is on Events,
// also across the watcher's member stopping and the watch moving to
// another member.
func TestWatcherSyncCoversEveryEventUpToItsZxid(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dial := func(eps ...string) *client.Client {
		c, err := client.Dial(ctx, client.Config{Endpoints: eps, InOrder: true, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	watcher := dial(cl.Addr(0), cl.Addr(1), cl.Addr(2))
	writer := dial(cl.Addr(1), cl.Addr(2))
	if _, _, err := writer.Create(ctx, "/s", nil); err != nil {
		t.Fatal(err)
	}
	w, err := watcher.Watch(ctx, "/s", client.Recursive())
	if err != nil {
		t.Fatal(err)
	}
	var last uint64 // zxid of the newest event taken
	for round := range 6 {
		if round == 3 {
			cl.Stop(0) // the watch moves to another member
		}
		var acked uint64
		for i := range 20 {
			st, err := writer.Set(ctx, "/s", fmt.Appendf(nil, "%d-%d", round, i), -1)
			if err != nil {
				t.Fatal(err)
			}
			acked = st.Mzxid
		}
		z, err := w.Sync(ctx)
		if err != nil {
			t.Fatalf("round %d: Sync: %v", round, err)
		}
		if z < acked {
			t.Fatalf("round %d: Sync answered %d, below the last acknowledged write %d", round, z, acked)
		}
		// Everything up to z is on Events now: take it without waiting.
		for last < acked {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					t.Fatalf("round %d: watch ended: %v", round, w.Err())
				}
				last = ev.Zxid
			default:
				t.Fatalf("round %d: Sync answered %d, but the event of zxid %d is not on Events (last taken %d)", round, z, acked, last)
			}
		}
	}
}
