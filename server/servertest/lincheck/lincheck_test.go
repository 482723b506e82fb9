package lincheck

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/arbor-db/arbor/client/wire"
)

// op builds a history entry.
func op(client int, call, ret int64, in Input, out Output) Op {
	return Op{Client: client, Input: in, Output: out, Call: call, Return: ret}
}

func create(p, d string) Input       { return Input{Kind: KindCreate, Path: p, Data: d, Version: AnyVersion} }
func set(p, d string, v int64) Input { return Input{Kind: KindSet, Path: p, Data: d, Version: v} }
func cas(p string, v int64, d string) Input {
	return Input{Kind: KindCAS, Path: p, Data: d, Version: v}
}
func get(p string) Input            { return Input{Kind: KindGet, Path: p} }
func del(p string, v int64) Input   { return Input{Kind: KindDelete, Path: p, Version: v} }
func ok(v int64) Output             { return Output{Version: v} }
func seen(d string, v int64) Output { return Output{Data: d, Version: v} }
func code(c wire.Code) Output       { return Output{Err: c} }

var unknown = Output{Unknown: true}

func TestCheckLinearizable(t *testing.T) {
	const end = 1000
	cases := []struct {
		name string
		h    []Op
		want porcupine.CheckResult
	}{
		{"sequential", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, 3, set("/a", "y", 0), ok(1)),
			op(1, 4, 5, get("/a"), seen("y", 1)),
			op(1, 6, 7, cas("/a", 1, "z"), ok(2)),
			op(1, 8, 9, cas("/a", 1, "w"), code(wire.CodeBadVersion)),
			op(0, 10, 11, del("/a", 2), ok(0)),
			op(0, 12, 13, get("/a"), code(wire.CodeNoNode)),
		}, porcupine.Ok},
		{"stale read", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, 3, set("/a", "y", AnyVersion), ok(1)),
			op(1, 4, 5, get("/a"), seen("x", 0)),
		}, porcupine.Illegal},
		{"concurrent read may see either", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, 6, set("/a", "y", AnyVersion), ok(1)),
			op(1, 3, 4, get("/a"), seen("x", 0)),
			op(2, 3, 5, get("/a"), seen("y", 1)),
		}, porcupine.Ok},
		{"unknown write that happened", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, end, set("/a", "y", AnyVersion), unknown),
			op(1, 10, 11, get("/a"), seen("y", 1)),
		}, porcupine.Ok},
		{"unknown write that did not happen", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, end, set("/a", "y", AnyVersion), unknown),
			op(1, 10, 11, get("/a"), seen("x", 0)),
		}, porcupine.Ok},
		{"acknowledged write lost", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, 3, set("/a", "y", AnyVersion), ok(1)),
			op(1, 10, 11, get("/a"), code(wire.CodeNoNode)),
		}, porcupine.Illegal},
		{"refused write took effect", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(0, 2, 3, set("/a", "y", 5), code(wire.CodeBadVersion)),
			op(1, 10, 11, get("/a"), seen("y", 1)),
		}, porcupine.Illegal},
		{"paths are independent", []Op{
			op(0, 0, 1, create("/a", "x"), ok(0)),
			op(1, 0, 1, create("/b", "x"), ok(0)),
			op(1, 2, 3, get("/b"), seen("x", 0)),
		}, porcupine.Ok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := CheckLinearizable(tc.h, 10*time.Second)
			if res.Result != tc.want {
				t.Fatalf("got %v, want %v", res.Result, tc.want)
			}
		})
	}
}

func TestRecorderUnknownReturnsAtTheEnd(t *testing.T) {
	r := NewRecorder()
	c := r.NewClient()
	w := r.Call(c, create("/a", "x"))
	r.Return(w, unknown)
	g := r.Call(c, get("/a"))
	r.Discard(g)
	s := r.Call(c, set("/a", "y", AnyVersion)) // never returns
	_ = s
	g2 := r.Call(c, get("/a"))
	r.Return(g2, seen("x", 0))
	h := r.History()
	if len(h) != 3 {
		t.Fatalf("history %v: want 3 ops (the failed read dropped)", h)
	}
	for _, o := range h {
		if o.Input.Kind != KindGet && (!o.Output.Unknown || o.Return <= h[2].Return) {
			t.Errorf("%v: want unknown, returning after every other op (%d)", o, o.Return)
		}
	}
	if st := Count(h); st.Ops != 3 || st.Unknown != 2 {
		t.Errorf("count %+v", st)
	}
}

func TestSaveVisualization(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(VisualizationDirEnv, "")
	res := CheckLinearizable([]Op{
		op(0, 0, 1, create("/a", "x"), ok(0)),
		op(1, 2, 3, get("/a"), code(wire.CodeNoNode)),
	}, time.Second)
	if res.Result != porcupine.Illegal {
		t.Fatal(res.Result)
	}
	p, err := SaveVisualization(res, dir, "viz")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("visualization %s: %v", p, err)
	}
}

func TestCheckLocalReadsMonotonic(t *testing.T) {
	local := Input{Kind: KindGet, Path: "/a", Local: true}
	h := []Op{
		op(0, 0, 1, create("/a", "x"), Output{Zxid: 10}),
		op(0, 2, 3, local, Output{Zxid: 12, Data: "x"}),
		op(0, 4, 5, local, Output{Zxid: 11, Data: "x"}), // back
		op(1, 0, 1, local, Output{Zxid: 5}),             // another connection: fine
		op(1, 2, 3, local, Output{Zxid: 5}),
		op(1, 4, 5, set("/a", "y", AnyVersion), unknown),
	}
	errs := CheckLocalReadsMonotonic(h)
	if len(errs) != 1 || !errors.Is(errs[0], ErrViolation) || !strings.Contains(errs[0].Error(), "zxid 11 after 12") {
		t.Fatalf("got %v", errs)
	}
}

func TestCheckEphemerals(t *testing.T) {
	closeS := Input{Kind: KindClose, Session: "s1"}
	h := []Op{
		op(0, 0, 1, Input{Kind: KindCreate, Path: "/e/1", Ephemeral: true, Session: "s1"}, ok(0)),
		op(1, 1, 3, get("/e/1"), Output{Owner: "s1"}), // concurrent with the close: fine
		op(0, 2, 4, closeS, Output{}),
		op(1, 5, 6, Input{Kind: KindGet, Path: "/e/1", Local: true}, Output{Owner: "s1"}), // local: may lag
		op(1, 7, 8, get("/e/1"), Output{Owner: "s1"}),                                     // violation
		op(1, 9, 10, get("/e/1"), code(wire.CodeNoNode)),
	}
	errs := CheckEphemerals(h)
	if len(errs) != 1 || !errors.Is(errs[0], ErrViolation) {
		t.Fatalf("got %v", errs)
	}
	// Ephemeral paths stay out of the linearizability check.
	if n := len(LinearizableOps(h)); n != 0 {
		t.Errorf("%d ops on ephemeral paths checked for linearizability", n)
	}
}

func TestCheckStateHashes(t *testing.T) {
	states := map[string]*MemberState{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(states[r.Host])
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// One server answers for every "member": vary the answer by Host.
	alias := strings.Replace(addr, "127.0.0.1", "localhost", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	states[addr] = &MemberState{Member: "a", Applied: 7, StateSHA256: "aa"}
	states[alias] = &MemberState{Member: "b", Applied: 7, StateSHA256: "aa"}
	if err := CheckStateHashes(ctx, []string{addr, alias}); err != nil {
		t.Fatalf("equal states: %v", err)
	}
	states[alias].StateSHA256 = "bb"
	if err := CheckStateHashes(ctx, []string{addr, alias}); !errors.Is(err, ErrStateDiverged) || !errors.Is(err, ErrViolation) {
		t.Fatalf("diverged states: %v", err)
	}
	states[alias].Applied = 8
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := CheckStateHashes(short, []string{addr, alias}); !errors.Is(err, ErrNotConverged) {
		t.Fatalf("unconverged states: %v", err)
	}
}
