package zk

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/arbor-db/arbor/client/bench"
)

var (
	_ bench.Locker  = (*Store)(nil)
	_ bench.Elector = (*Store)(nil)
)

// lockName is the name, before the sequence number, of a contender's node
// under the lock's path (after go-zookeeper's protected _c_GUID- prefix).
const lockName = "lock-"

// Lock takes the exclusive lock at path with the recipe of Curator's
// InterProcessMutex: an ephemeral sequential child of path, created
// protected (a create whose answer is lost is found again by its GUID),
// holds the lock once no child with a lower sequence number is left.
// Until then it watches only its predecessor (an exists watch), so a
// release wakes one contender, not all. go-zookeeper's own zk.Lock is the
// same recipe but takes no context and hides its node.
//
// The token is the node's sequence number: path's cversion when it was
// created, which grows with every child created or deleted as long as
// path itself is not deleted (the workload creates it persistent).
func (s *Store) Lock(ctx context.Context, path string) (uint64, error) {
	seq, err := s.acquire(ctx, path, nil)
	if err != nil {
		return 0, fmt.Errorf("zk: lock %s: %w", path, err)
	}
	return uint64(seq), nil
}

// Campaign stands for election at path with the same recipe as Lock (the
// leader is the lowest node, as in Curator's LeaderSelector); value is the
// node's data.
func (s *Store) Campaign(ctx context.Context, path string, value []byte) error {
	if _, err := s.acquire(ctx, path, value); err != nil {
		return fmt.Errorf("zk: campaign %s: %w", path, err)
	}
	return nil
}

// Resign deletes this session's node under path.
func (s *Store) Resign(ctx context.Context, path string) error { return s.Unlock(ctx, path) }

// SessionTimeout is the timeout asked for; the bench ensembles' tickTime
// of 2 s lets ZooKeeper grant anything from 4 to 40 s, so it stands.
func (s *Store) SessionTimeout() time.Duration { return SessionTimeout }

// acquire creates this session's node under path, with data, and waits
// until no node with a lower sequence number is left; it returns the
// node's sequence number.
func (s *Store) acquire(ctx context.Context, path string, data []byte) (int64, error) {
	if _, ok := s.locks[path]; ok {
		return 0, gozk.ErrDeadlock
	}
	node, err := run(ctx, func() (string, error) {
		return s.conn.CreateProtectedEphemeralSequential(path+"/"+lockName, data, acl)
	})
	if err != nil {
		return 0, err
	}
	seq, ok := sequence(node)
	if !ok {
		return 0, fmt.Errorf("created %s, which has no sequence number", node)
	}
	for {
		children, err := run(ctx, func() ([]string, error) {
			c, _, err := s.conn.Children(path)
			return c, err
		})
		if err != nil {
			return 0, err
		}
		pred, ok := predecessor(children, seq)
		if !ok {
			s.locks[path] = node
			return seq, nil
		}
		// A predecessor gone by now has no watch to fire: list again.
		// (go-zookeeper keeps that exists watch until the session ends; a
		// sequential name is never created again, so it never fires.)
		type watch struct {
			exists bool
			ch     <-chan gozk.Event
		}
		w, err := run(ctx, func() (watch, error) {
			ok, _, ch, err := s.conn.ExistsW(path + "/" + pred)
			return watch{ok, ch}, err
		})
		if err != nil {
			return 0, err
		}
		if !w.exists {
			continue
		}
		select {
		case ev := <-w.ch:
			if ev.Err != nil {
				return 0, fmt.Errorf("watching %s: %w", pred, ev.Err)
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Unlock deletes this session's node under path.
func (s *Store) Unlock(ctx context.Context, path string) error {
	node, ok := s.locks[path]
	if !ok {
		return fmt.Errorf("zk: unlock %s: %w", path, gozk.ErrNotLocked)
	}
	delete(s.locks, path)
	_, err := run(ctx, func() (struct{}, error) { return struct{}{}, s.conn.Delete(node, -1) })
	if err != nil {
		return fmt.Errorf("zk: unlock %s: %w", path, err)
	}
	return nil
}

// sequence is the sequence number ZooKeeper appended to a node's name: its
// last 10 digits.
func sequence(name string) (int64, bool) {
	if len(name) < 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	return n, err == nil && n >= 0
}

// predecessor returns the contender just before seq among a lock's
// children: the one with the highest sequence number below seq. Children
// that are not contenders are ignored.
func predecessor(children []string, seq int64) (string, bool) {
	var (
		best    string
		bestSeq int64 = -1
	)
	for _, c := range children {
		if !strings.Contains(c, lockName) {
			continue
		}
		if n, ok := sequence(c); ok && n < seq && n > bestSeq {
			best, bestSeq = c, n
		}
	}
	return best, bestSeq >= 0
}
