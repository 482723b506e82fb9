package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// A renewal round confirms its sessions only if this member led in the
// same term from before it took them to after the ReadIndex round: a
// leader that stepped down meanwhile has its round answered by the new
// leader, which never saw these renewals and may expire the sessions
// before the deadline this renewal would promise.
func TestRenewalsConfirmedOnlyByALeaderOfOneTerm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during func(*fakeRep) // while the ReadIndex round runs
		ok     bool
	}{
		{"still leading", func(*fakeRep) {}, true},
		{"stepped down", func(f *fakeRep) { f.leader = 2 }, false},
		{"leading again in a later term", func(f *fakeRep) { f.term = 3 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startFake(t, nil)
			h := dial(t, ts.addr).call(`{"id":1,"op":"hello","timeout_ms":5000}`)
			id, err := wire.ParseSession(h.Session)
			if !h.OK || err != nil {
				t.Fatalf("hello: %+v %v", h, err)
			}
			ts.rep.mu.Lock()
			ts.rep.onRead = func() {
				ts.rep.mu.Lock()
				tc.during(ts.rep)
				ts.rep.mu.Unlock()
			}
			ts.rep.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			notRenewed, err := ts.srv.confirmRenewals(ctx, []uint64{id})
			switch {
			case tc.ok && (err != nil || len(notRenewed) != 0):
				t.Fatalf("confirmRenewals = %v, %v; want the session renewed", notRenewed, err)
			case !tc.ok && !errors.Is(err, errNotLeader):
				t.Fatalf("confirmRenewals = %v, %v; want errNotLeader", notRenewed, err)
			}
		})
	}
}
