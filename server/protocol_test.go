package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
)

// PROTOCOL.md: UNAVAILABLE is "no quorum or no leader in time"; TIMEOUT is
// a request that ran out of time while a leader was known.
func TestDeadlineWithoutLeaderIsUnavailable(t *testing.T) {
	ts := startFake(t, func(cfg *Config) { cfg.RequestTimeout = 200 * time.Millisecond })
	waitReady(t, ts.addr)
	c := helloed(t, ts.addr)
	setRep := func(hang, down bool) {
		ts.rep.mu.Lock()
		ts.rep.hang, ts.rep.down = hang, down
		ts.rep.mu.Unlock()
	}
	cases := []struct {
		down bool
		req  string
		want wire.Code
	}{
		{true, `{"id":2,"op":"create","path":"/x"}`, wire.CodeUnavailable},
		{true, `{"id":3,"op":"get","path":"/"}`, wire.CodeUnavailable},
		{true, `{"id":4,"op":"sync","path":"/"}`, wire.CodeUnavailable},
		{false, `{"id":5,"op":"create","path":"/y"}`, wire.CodeTimeout},
		{false, `{"id":6,"op":"get","path":"/"}`, wire.CodeTimeout},
	}
	for _, tc := range cases {
		setRep(true, tc.down)
		if r := c.call(tc.req); r.OK || r.Error == nil || r.Error.Code != tc.want {
			t.Errorf("%s with down=%v: %+v %+v, want %s", tc.req, tc.down, r, r.Error, tc.want)
		}
	}
	setRep(false, false)
	// A local read needs no leader.
	setRep(true, true)
	if r := c.call(`{"id":7,"op":"get","path":"/","local":true}`); !r.OK {
		t.Errorf("local read without a leader: %+v", r.Error)
	}
	setRep(false, false)
	c.mustAnswer()
}

func TestReplicationErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		want wire.Code
	}{
		{fmt.Errorf("%w: %w", raftnode.ErrNoLeader, context.DeadlineExceeded), wire.CodeUnavailable},
		{raftnode.ErrProposalDropped, wire.CodeUnavailable},
		{context.DeadlineExceeded, wire.CodeTimeout},
		{raftnode.ErrStopped, wire.CodeUnavailable},
	}
	for _, tc := range cases {
		if got := replicationError(tc.err); got.Code != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got.Code, tc.want)
		}
	}
}

func TestMultiAndDeleteEdges(t *testing.T) {
	ts := startFake(t, nil)
	waitReady(t, ts.addr)
	c := helloed(t, ts.addr)
	if r := c.call(`{"id":1,"op":"create","path":"/a"}`); !r.OK {
		t.Fatal(r.Error)
	}
	ex := c.call(`{"id":1,"op":"exists","path":"/arbor/members/m1"}`)
	if !ex.OK || ex.Stat.Stat == nil {
		t.Fatalf("own member record: %+v", ex)
	}
	v := ex.Stat.Stat.Version
	cases := []struct {
		req     string
		code    wire.Code // "" means success
		message string
		index   int // -1: no index
	}{
		{`{"id":10,"op":"multi"}`, wire.CodeBadRequest, "field ops: missing", -1},
		{`{"id":11,"op":"multi","ops":null}`, wire.CodeBadRequest, "field ops: missing", -1},
		{`{"id":12,"op":"multi","ops":[]}`, "", "", -1},
		{`{"id":13,"op":"multi","ops":[{"op":"check","path":"/a"}]}`, wire.CodeBadRequest, "field version: missing", 0},
		{`{"id":14,"op":"multi","ops":[{"op":"check","path":"/a","version":-1},{"op":"check","path":"/a","version":0}]}`, "", "", -1},
		{`{"id":15,"op":"multi","ops":[{"op":"check","path":"/a","version":0},{"op":"check","path":"/a","version":3}]}`, wire.CodeBadVersion, "/a", 1},
		{`{"id":16,"op":"multi","ops":[{"op":"check","path":"/nope","version":-1}]}`, wire.CodeNoNode, "/nope", 0},
		// /arbor is read-only, and a check only reads.
		{fmt.Sprintf(`{"id":17,"op":"multi","ops":[{"op":"check","path":"/arbor/members/m1","version":%d}]}`, v), "", "", -1},
		{`{"id":18,"op":"multi","ops":[{"op":"check","path":"/a","version":0},{"op":"set","path":"/arbor/members/m1","version":-1}]}`, wire.CodeReadOnly, "reserved", 1},
		{`{"id":19,"op":"multi","ops":[{"op":"multi","ops":[]}]}`, wire.CodeBadRequest, "not allowed inside multi", 0},
		{`{"id":20,"op":"delete","path":"/"}`, wire.CodeBadPath, "root", -1},
		{`{"id":21,"op":"delete","path":"/","recursive":true}`, wire.CodeBadPath, "root", -1},
		{`{"id":22,"op":"multi","ops":[{"op":"delete","path":"/","recursive":true}]}`, wire.CodeBadPath, "root", 0},
	}
	for _, tc := range cases {
		r := c.call(tc.req)
		if tc.code == "" {
			if !r.OK || r.Zxid == 0 {
				t.Errorf("%s: %+v %+v", tc.req, r, r.Error)
			}
			continue
		}
		if r.OK || r.Error == nil || r.Error.Code != tc.code || !strings.Contains(r.Error.Message, tc.message) {
			t.Errorf("%s: got %+v, want %s mentioning %q", tc.req, r.Error, tc.code, tc.message)
		}
		if (tc.index < 0) != (r.Index == nil) || r.Index != nil && *r.Index != tc.index {
			t.Errorf("%s: index %v, want %d", tc.req, r.Index, tc.index)
		}
		c.mustAnswer()
	}
	// The root and /a are still there.
	if r := c.call(`{"id":30,"op":"exists","path":"/a"}`); !r.OK || r.Stat.Stat == nil {
		t.Fatalf("/a after the refused deletes: %+v", r)
	}
}
