package faults

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

// A follower that falls behind the leader's compacted log while a watcher
// follows it installs a snapshot under that watcher. The changes the
// snapshot covers have no events, so the watcher must get them as a
// resync, never lose them: the random schedule of TestFaults rarely has a
// watcher on a follower at that moment (a new session cannot be opened on
// a member that does not apply), so this runs it on purpose. The
// bug_restorekeepswatches control must fail here.
func TestWatcherAcrossSnapshotInstall(t *testing.T) {
	c := newCluster(t, 3, 1)
	defer c.stopAll()
	start := setup(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	l := -1
	for deadline := time.Now().Add(10 * time.Second); l < 0; {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 10s")
		}
		if l = c.leader(); l < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	f := (l + 1) % c.size()
	pinned := func(i int) *client.Client {
		cl, err := client.Dial(ctx, client.Config{Endpoints: []string{c.members[i].addr}, NoDiscovery: true,
			SessionTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close(context.Background()) })
		return cl
	}
	log := lincheck.NewWatchLog(lincheck.WatchInitial())
	watcher, writer := pinned(f), pinned(l)
	w, err := watcher.Watch(ctx, lincheck.WatchRoot, client.Recursive(), client.Since(start))
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		for ev := range w.Events() {
			log.Event(0, lincheck.Logged(ev))
		}
	}()
	set := func(i int, data string) uint64 {
		t.Helper()
		path := fmt.Sprintf("%s/%d", lincheck.WatchRoot, i%6)
		st, err := writer.Set(ctx, path, []byte(data), client.AnyVersion)
		if err != nil {
			t.Fatal(err)
		}
		log.Acked(lincheck.AckedChange{Path: path, Data: data, Zxid: st.Mzxid})
		return st.Mzxid
	}
	set(0, "before")

	// The follower keeps its leader (heartbeats) but gets no appends while
	// the leader writes past two snapshots and compacts its log.
	c.net.Starve(c.members[l].id, c.members[f].id)
	for i := range 900 {
		set(i, fmt.Sprintf("d%d", i))
	}
	c.net.Heal()
	marker := set(0, "end")

	deadline := time.Now().Add(20 * time.Second)
	for !log.Seen(0, marker) {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher on the follower did not reach zxid %d within 20s of healing (last %d)", marker, log.Last(0))
		}
		time.Sleep(10 * time.Millisecond)
	}
	final := map[string]string{}
	for p := range lincheck.WatchInitial() {
		data, _, err := writer.Get(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		final[p] = string(data)
	}
	_ = w.Close(ctx)
	<-followed
	for _, err := range lincheck.CheckWatch(log, final) {
		t.Error(err)
	}
	if acked, events, resyncs := log.Counts(); resyncs == 0 {
		t.Errorf("no resync (%d acknowledged changes, %d events): the follower never installed a snapshot under the watcher", acked, events)
	}
}
