package servertest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server"
	"github.com/arbor-db/arbor/server/servertest"
)

func dialClient(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// InOrder: the tests say which member a client is on.
	c, err := client.Dial(ctx, client.Config{Endpoints: endpoints, SessionTimeout: 10 * time.Second,
		InOrder: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("dial %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// collect reads events of w until n have come (or the deadline) and
// renders them "type:path".
func collect(t *testing.T, w *client.Watcher, n int, d time.Duration) []string {
	t.Helper()
	var got []string
	timeout := time.After(d)
	for len(got) < n {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended after %d events: %v", len(got), w.Err())
			}
			got = append(got, ev.Type.String()+":"+ev.Path)
		case <-timeout:
			t.Fatalf("%d events within %v, want %d: %q", len(got), d, n, got)
		}
	}
	return got
}

// createAll creates /w/n000.. /w/n(count-1) one by one through c, retrying
// writes whose outcome is unknown (a create that was applied answers
// NODE_EXISTS on the retry), and calls mid after half of them.
func createAll(t *testing.T, c *client.Client, count int, mid func()) {
	for i := range count {
		if i == count/2 && mid != nil {
			mid()
		}
		p := fmt.Sprintf("/w/n%03d", i)
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, err := c.Create(ctx, p, []byte(p))
			cancel()
			if err == nil || errors.Is(err, client.ErrNodeExists) {
				break
			}
			if attempt > 50 {
				t.Errorf("create %s: %v", p, err)
				return
			}
		}
	}
}

func wantCreated(count int) []string {
	var want []string
	for i := range count {
		want = append(want, fmt.Sprintf("created:/w/n%03d", i))
	}
	return want
}

func sameEvents(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

// The member a watcher is connected to stops in the middle of a stream of
// changes; the client resumes on another member, registers the watch again
// since the last event it delivered, and delivers every change exactly
// once, in order.
func TestClientWatchSurvivesMemberStop(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	writer := dialClient(t, cl.Addr(1), cl.Addr(2))
	if _, _, err := writer.Create(context.Background(), "/w", nil); err != nil {
		t.Fatal(err)
	}
	watcher := dialClient(t, cl.Addr(0), cl.Addr(1), cl.Addr(2))
	w, err := watcher.Watch(context.Background(), "/w", client.Recursive())
	if err != nil {
		t.Fatal(err)
	}
	const count = 60
	var wg sync.WaitGroup
	wg.Go(func() { createAll(t, writer, count, func() { cl.Stop(0) }) })
	got := collect(t, w, count, 60*time.Second)
	wg.Wait()
	sameEvents(t, got, wantCreated(count))
	if watcher.Server() == cl.Name(0) {
		t.Fatalf("watcher still on %s", cl.Name(0))
	}
	// Nothing more (no duplicate) once a later change is seen.
	if _, err := writer.Set(context.Background(), "/w", []byte("end"), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, collect(t, w, 1, 10*time.Second), []string{"data:/w"})
}

// A connection that falls behind on its watch events is closed by the
// member; the client resumes, registers again since the last event, and the
// user sees every change once.
func TestClientWatchSlowConnectionResumes(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.WithConfig(func(cfg *server.Config) { cfg.MaxQueuedEventBytes = 4000 }))
	c := dialClient(t, cl.Addr(0))
	if _, _, err := c.Create(context.Background(), "/w", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(context.Background(), "/w", client.Recursive())
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("z", 600))
	var ops []client.Op
	for i := range 8 {
		ops = append(ops, client.OpCreate(fmt.Sprintf("/w/n%03d", i), big))
	}
	// From another client: the watcher's connection is the one that closes.
	if _, err := dialClient(t, cl.Addr(0)).Multi(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, collect(t, w, 8, 20*time.Second), wantCreated(8))
	resp, err := http.Get("http://" + cl.Addr(0) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\narbor_watch_slow_connections_closed_total 1\n") {
		t.Fatal("the member did not close the slow connection: the test did not test the overflow")
	}
	if _, _, err := c.Create(context.Background(), "/w/n008", nil); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, collect(t, w, 1, 10*time.Second), []string{"created:/w/n008"})
}

// A watch since a zxid on a member other than the one that wrote.
func TestClientWatchSinceOnAnotherMember(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	writer := dialClient(t, cl.Addr(0))
	if _, _, err := writer.Create(context.Background(), "/w", nil); err != nil {
		t.Fatal(err)
	}
	since := writer.LastZxid()
	createAll(t, writer, 5, nil)
	reader := dialClient(t, cl.Addr(2))
	w, err := reader.Watch(context.Background(), "/w", client.Recursive(), client.Since(since))
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, collect(t, w, 5, 10*time.Second), wantCreated(5))
}

// since older than a tiny history: one resync event with the subtree, then
// the changes after it.
func TestClientWatchResync(t *testing.T) {
	cl := servertest.NewCluster(t, 1, servertest.WithConfig(func(cfg *server.Config) { cfg.WatchHistoryEvents = 3 }))
	c := dialClient(t, cl.Addr(0))
	if _, _, err := c.Create(context.Background(), "/w", nil); err != nil {
		t.Fatal(err)
	}
	since := c.LastZxid()
	createAll(t, c, 4, nil)
	w, err := c.Watch(context.Background(), "/w", client.Recursive(), client.Since(since))
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.Events()
	if ev.Type != client.EventResync || len(ev.Nodes) != 5 || ev.Nodes[0].Path != "/w" || string(ev.Nodes[4].Data) != "/w/n003" {
		t.Fatalf("first event %+v, want a resync of /w and its 4 children", ev)
	}
	if _, err := c.Set(context.Background(), "/w/n001", []byte("x"), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	got := <-w.Events()
	if got.Type != client.EventData || got.Path != "/w/n001" || string(got.Data) != "x" || got.Zxid <= ev.Zxid {
		t.Fatalf("after the resync: %+v", got)
	}
}

func TestClientWatchOnceAndBuffer(t *testing.T) {
	cl := servertest.NewCluster(t, 1)
	c := dialClient(t, cl.Addr(0))
	ctx := context.Background()
	if _, _, err := c.Create(ctx, "/o", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var once <-chan client.WatchEvent
	data, _, err := c.Get(ctx, "/o", client.WatchOnce(&once))
	if err != nil || string(data) != "1" || once == nil {
		t.Fatalf("get with watch: %q %v", data, err)
	}
	st, err := c.Set(ctx, "/o", []byte("2"), client.AnyVersion)
	if err != nil {
		t.Fatal(err)
	}
	ev := <-once
	if ev.Type != client.EventData || ev.Path != "/o" || ev.Zxid != st.Mzxid || ev.Err != nil {
		t.Fatalf("one-shot event %+v", ev)
	}
	if _, ok := <-once; ok {
		t.Fatal("one-shot channel not closed after its event")
	}
	// Exists of a missing node watches for its create.
	var ex <-chan client.WatchEvent
	if st, err := c.Exists(ctx, "/p", client.WatchOnce(&ex)); err != nil || st != nil {
		t.Fatalf("exists: %v %v", st, err)
	}
	if _, _, err := c.Create(ctx, "/p", nil); err != nil {
		t.Fatal(err)
	}
	if ev := <-ex; ev.Type != client.EventCreated {
		t.Fatalf("exists watch: %+v", ev)
	}
	// A consumer that does not read: the watch ends with ErrWatchOverflow
	// rather than stall the client.
	w, err := c.Watch(ctx, "/o", client.WatchBuffer(2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := c.Set(ctx, "/o", []byte{byte(i)}, client.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range w.Events() {
		n++
	}
	if n != 2 || !errors.Is(w.Err(), client.ErrWatchOverflow) {
		t.Fatalf("overflowed watch: %d events, err %v", n, w.Err())
	}
	// The client goes on working, and Close of a live watch ends it.
	w2, err := c.Watch(ctx, "/o")
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-w2.Events(); ok || !errors.Is(w2.Err(), client.ErrWatchClosed) {
		t.Fatalf("after Close: err %v", w2.Err())
	}
}
