package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
)

// member add, promote and remove by hand, against one member.
func TestMemberCommands(t *testing.T) {
	addr, _ := startDev(t)
	ep := "--endpoints=" + addr
	if o := arbor(t, nil, "", "member", "add", ep, "spare", "127.0.0.1:1", "--learner"); o.code != 0 {
		t.Fatalf("member add --learner: %+v", o)
	}
	o := arbor(t, nil, "", "member", "list", ep)
	if o.code != 0 || !strings.Contains(o.stdout, "spare") || !strings.Contains(o.stdout, "learner") {
		t.Fatalf("member list after add: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "add", ep, "spare", "127.0.0.1:1"); o.code != 1 || !strings.HasPrefix(o.stderr, "NODE_EXISTS:") {
		t.Fatalf("adding it again: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "promote", ep, "dev"); o.code != 1 || !strings.Contains(o.stderr, "voter already") {
		t.Fatalf("promoting a voter: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "remove", ep, "spare"); o.code != 0 {
		t.Fatalf("member remove: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "remove", ep, "spare"); o.code != 1 || !strings.HasPrefix(o.stderr, "NO_NODE:") {
		t.Fatalf("removing it again: %+v", o)
	}
	if o := arbor(t, nil, "", "member", "remove", ep, "dev"); o.code != 1 || !strings.Contains(o.stderr, "last voter") {
		t.Fatalf("removing the last voter: %+v", o)
	}
	for _, args := range [][]string{{"member"}, {"member", "add", ep, "x"}, {"member", "add", ep, "x", "nohostport"}} {
		if o := arbor(t, nil, "", args...); o.code != 2 {
			t.Errorf("arbor %v: exit %d, want 2; stderr %q", args, o.code, o.stderr)
		}
	}
}

// members and member list sync first on the connection they list through
// (members is a local read: a member that has not applied a newcomer's
// attributes would show its client URL as -), and list anyway when the
// sync fails.
func TestMembersSyncFirst(t *testing.T) {
	for _, syncFails := range []bool{false, true} {
		var mu sync.Mutex
		var ops []string
		up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				var req wire.Request
				if err := ws.ReadJSON(&req); err != nil {
					return
				}
				if req.Op != wire.OpPing {
					mu.Lock()
					ops = append(ops, req.Op)
					mu.Unlock()
				}
				resp := &wire.Response{ID: req.ID, OK: true, Zxid: 7}
				switch req.Op {
				case wire.OpHello:
					resp.Session, resp.Secret, resp.TimeoutMs, resp.Server = wire.FormatSession(1), "s", 10000, "m"
				case wire.OpSync:
					if syncFails {
						resp = &wire.Response{ID: req.ID, Error: &wire.Error{Code: wire.CodeUnavailable, Message: "no leader"}}
					}
				case wire.OpMembers:
					resp.Members = []wire.Member{{Name: "m", ClientURL: "127.0.0.1:1", PeerURL: "127.0.0.1:2", Role: wire.RoleLeader, Alive: true}}
				}
				if err := ws.WriteJSON(resp); err != nil {
					return
				}
			}
		}))
		ep := "--endpoints=" + strings.TrimPrefix(srv.URL, "http://")
		for _, args := range [][]string{{"members", ep}, {"member", "list", ep}} {
			mu.Lock()
			ops = nil
			mu.Unlock()
			o := arbor(t, nil, "", args...)
			if o.code != 0 || !strings.Contains(o.stdout, "127.0.0.1:1") {
				t.Errorf("arbor %v (sync fails: %v): %+v", args, syncFails, o)
			}
			mu.Lock()
			got := slices.Clone(ops)
			mu.Unlock()
			// Discovery asks for members too, at any time; the listing's
			// own request is the last one, after the sync.
			if s, m := slices.Index(got, wire.OpSync), lastIndex(got, wire.OpMembers); s < 0 || m < s {
				t.Errorf("arbor %v (sync fails: %v) sent %q, want a sync before its members", args, syncFails, got)
			}
		}
		srv.Close()
	}
}

func lastIndex(s []string, v string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
}
