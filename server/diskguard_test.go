package server

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// fakeDisk is a statfs whose answer the test sets, counting the calls.
type fakeDisk struct {
	free  uint64
	err   error
	calls int
}

func (d *fakeDisk) statfs(string) (uint64, error) {
	d.calls++
	return d.free, d.err
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestGuard(minFree int64) (*diskGuard, *fakeDisk, *fakeClock) {
	d := &fakeDisk{free: 1 << 30}
	c := &fakeClock{t: time.Unix(1000, 0)}
	g := newDiskGuard("/data", minFree, d.statfs, c.now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return g, d, c
}

func TestDiskGuardRefusesUnderReserveAndResumes(t *testing.T) {
	g, d, c := newTestGuard(0)
	if err := g.refuse(); err != nil {
		t.Fatalf("1 GiB free: refused with %v", err)
	}
	d.free = 3355443 // 3.2 MiB
	c.t = c.t.Add(diskCheckEvery)
	err := g.refuse()
	if err == nil {
		t.Fatal("3.2 MiB free under the 64 MiB default reserve: write allowed")
	}
	if err.Code != wire.CodeUnavailable {
		t.Fatalf("code %s, want UNAVAILABLE", err.Code)
	}
	want := "disk full: 3.2 MiB free in /data, 64 MiB reserved; writes resume when space is freed"
	if err.Message != want {
		t.Fatalf("message %q, want %q", err.Message, want)
	}
	d.free = 64 << 20
	c.t = c.t.Add(diskCheckEvery)
	if err := g.refuse(); err != nil {
		t.Fatalf("free space back at the reserve: still refused with %v", err)
	}
}

func TestDiskGuardCachesStatfs(t *testing.T) {
	g, d, c := newTestGuard(0)
	for range 100 {
		g.refuse()
	}
	if d.calls != 1 {
		t.Fatalf("100 writes at one instant asked the file system %d times, want 1", d.calls)
	}
	d.free = 0
	c.t = c.t.Add(diskCheckEvery - time.Millisecond)
	if err := g.refuse(); err != nil {
		t.Fatalf("the cached answer is younger than %v, yet refused: %v", diskCheckEvery, err)
	}
	c.t = c.t.Add(time.Millisecond)
	if err := g.refuse(); err == nil {
		t.Fatalf("disk full for %v: write allowed", diskCheckEvery)
	}
	if d.calls != 2 {
		t.Fatalf("statfs called %d times, want 2", d.calls)
	}
}

func TestDiskGuardReserveAndOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		minFree int64
		free    uint64
		refused bool
	}{
		{"default reserve, above", 0, 65 << 20, false},
		{"default reserve, below", 0, 63 << 20, true},
		{"custom reserve, above", 1 << 20, 2 << 20, false},
		{"custom reserve, below", 1 << 20, 512 << 10, true},
		{"off", -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, d, _ := newTestGuard(tc.minFree)
			d.free = tc.free
			if got := g.refuse() != nil; got != tc.refused {
				t.Fatalf("refused = %v, want %v", got, tc.refused)
			}
		})
	}
}

// A file system that cannot be asked does not stop writes: the storage
// layer still stops the member if a write really fails.
func TestDiskGuardStatfsErrorAllowsWrites(t *testing.T) {
	g, d, _ := newTestGuard(0)
	d.err = errors.New("statfs: input/output error")
	if err := g.refuse(); err != nil {
		t.Fatalf("statfs failing: refused with %v", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		512 << 10:  "512 KiB",
		1 << 20:    "1 MiB",
		3355443:    "3.2 MiB",
		64 << 20:   "64 MiB",
		2560 << 20: "2560 MiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// setFree makes g see free bytes from its next check on, as if the disk
// changed; it holds g's lock, which also orders it before every check.
func setFree(g *diskGuard, free uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statfs = func(string) (uint64, error) { return free, nil }
	g.checked = time.Time{}
}

// A client writing through a member whose disk is under the reserve gets
// UNAVAILABLE naming the cause, while reads, hello and close still work;
// once space is freed the same connection writes again.
func TestDiskFullRefusesWritesNotReads(t *testing.T) {
	ts := startFake(t, nil)
	c := helloed(t, ts.addr)
	if r := c.call(`{"id":1,"op":"create","path":"/a","data":"djE="}`); !r.OK {
		t.Fatalf("create with space: %+v", r.Error)
	}
	setFree(ts.srv.disk, 1<<20)
	for _, req := range []string{
		`{"id":2,"op":"create","path":"/b"}`,
		`{"id":3,"op":"set","path":"/a","data":"djI="}`,
		`{"id":4,"op":"delete","path":"/a"}`,
		`{"id":5,"op":"multi","ops":[{"op":"create","path":"/c"}]}`,
	} {
		r := c.call(req)
		if r.Error == nil || r.Error.Code != wire.CodeUnavailable || !strings.HasPrefix(r.Error.Message, "disk full: 1 MiB free in ") {
			t.Fatalf("%s on a full disk answered %+v (error %+v), want UNAVAILABLE disk full", req, r, r.Error)
		}
	}
	if r := c.call(`{"id":6,"op":"get","path":"/a"}`); !r.OK || string(r.Data) != "v1" {
		t.Fatalf("get on a full disk: %+v %+v", r, r.Error)
	}
	if r := helloed(t, ts.addr).call(`{"id":1,"op":"get","path":"/a","local":true}`); !r.OK {
		t.Fatalf("a new session reading on a full disk: %+v", r.Error)
	}
	setFree(ts.srv.disk, 1<<30)
	if r := c.call(`{"id":7,"op":"set","path":"/a","data":"djI="}`); !r.OK {
		t.Fatalf("set after space was freed: %+v", r.Error)
	}
}
