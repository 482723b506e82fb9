package server

import (
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// A write in flight when the leader changes is answered at once as
// UNAVAILABLE with an unknown outcome, not left to run into its deadline.
func TestWriteInFlightFailsFastWhenLeaderChanges(t *testing.T) {
	ts := startFake(t, func(c *Config) { c.RequestTimeout = time.Minute })
	c := helloed(t, ts.addr)
	ts.rep.mu.Lock()
	ts.rep.hang = true
	ts.rep.mu.Unlock()
	before := ts.rep.proposals()
	c.send(`{"id":2,"op":"create","path":"/lost"}`)
	for deadline := time.Now().Add(5 * time.Second); ts.rep.proposals() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the create was never proposed")
		}
	}
	start := time.Now()
	ts.rep.mu.Lock()
	ts.rep.leader = 2
	ts.rep.mu.Unlock()
	r := c.recv()
	if r.ID != 2 || r.OK || r.Error == nil || r.Error.Code != wire.CodeUnavailable {
		t.Fatalf("answer %+v, want UNAVAILABLE for id 2", r)
	}
	if !strings.Contains(r.Error.Message, "may or may not have been applied") {
		t.Fatalf("message %q does not say the outcome is unknown", r.Error.Message)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("answered %v after the leader changed", took)
	}
}
