package server

import (
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

const (
	// defaultMinFreeBytes is the reserve of Config.MinFreeBytes left at 0.
	defaultMinFreeBytes = 64 << 20
	// diskCheckEvery bounds how often the guard asks the file system: a
	// statfs per write would cost more than the write's own bookkeeping.
	diskCheckEvery = 100 * time.Millisecond
)

// diskGuard refuses client writes at the edge while the file system of the
// data dir has less than a reserve free. Without it a full disk is found
// by bbolt in the middle of a log append, which is a storage failure: the
// member stops (correctly, never acknowledging what it could not persist)
// and an operator has to restart it. With it the member keeps serving
// reads and says why writes fail, and writes resume on their own once space
// is freed. The reserve leaves room for what is already in flight and for
// entries other members replicate here.
//
// Free space is what an unprivileged process may use (Bavail): the reserve
// then holds even if the member runs as root.
type diskGuard struct {
	dir     string
	reserve uint64 // 0: disabled
	statfs  func(dir string) (free uint64, err error)
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	checked time.Time // zero until the first check
	free    uint64
	err     error
}

// newDiskGuard guards dir with a reserve of minFree bytes: 0 means the
// default (64 MiB), a negative value turns the guard off. statfs and now
// are injected so tests need neither a full disk nor a clock.
func newDiskGuard(dir string, minFree int64, statfs func(string) (uint64, error), now func() time.Time, log *slog.Logger) *diskGuard {
	g := &diskGuard{dir: dir, statfs: statfs, now: now, log: log}
	switch {
	case minFree == 0:
		g.reserve = defaultMinFreeBytes
	case minFree > 0:
		g.reserve = uint64(minFree)
	}
	return g
}

// statfsFree returns the bytes of dir's file system available to an
// unprivileged process.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// refuse returns the error to answer a client write with while free space
// is under the reserve, or nil when the write may be proposed. When the
// file system cannot be asked, writes go on: the storage layer still stops
// the member on a write that really fails.
func (g *diskGuard) refuse() *wire.Error {
	if g == nil || g.reserve == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); g.checked.IsZero() || now.Sub(g.checked) >= diskCheckEvery {
		wasLow := g.err == nil && g.free < g.reserve && !g.checked.IsZero()
		hadErr := g.err != nil
		g.checked = now
		g.free, g.err = g.statfs(g.dir)
		low := g.err == nil && g.free < g.reserve
		switch {
		case g.err != nil && !hadErr:
			g.log.Warn("cannot read free disk space; not guarding writes", "dir", g.dir, "err", g.err)
		case low && !wasLow:
			g.log.Warn("disk nearly full: refusing client writes", "dir", g.dir, "free", g.free, "reserve", g.reserve)
		case !low && wasLow:
			g.log.Info("disk space freed: accepting client writes again", "dir", g.dir, "free", g.free, "reserve", g.reserve)
		}
	}
	if g.err != nil || g.free >= g.reserve {
		return nil
	}
	return errorf(wire.CodeUnavailable, "disk full: %s free in %s, %s reserved; writes resume when space is freed",
		formatBytes(g.free), g.dir, formatBytes(g.reserve))
}

// formatBytes writes n in MiB with one decimal ("3.2 MiB", "64 MiB"), or
// in KiB below one MiB.
func formatBytes(n uint64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	s := fmt.Sprintf("%.1f", float64(n)/(1<<20))
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " MiB"
}
