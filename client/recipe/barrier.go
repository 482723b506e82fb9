package recipe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client"
)

// Barrier is a node that, while it exists, holds back everyone who Waits
// on it (ZooKeeper's and Curator's barrier): Set raises it, Remove lowers
// it and lets every waiter through. It is persistent, so it outlives the
// session that set it. A Barrier is safe for concurrent use.
type Barrier struct {
	c    *client.Client
	path string
}

// NewBarrier returns the barrier at path. It does no I/O: a bad path is
// reported by the first call.
func NewBarrier(c *client.Client, path string) *Barrier {
	return &Barrier{c: c, path: path}
}

// Set raises the barrier, creating any missing parents of its node as
// persistent nodes. Setting a barrier that is up already is no error, so a
// Set that failed with an indeterminate error (client.IsIndeterminate) can
// simply be called again.
func (b *Barrier) Set(ctx context.Context) error {
	if err := checkRecipe(b.c, b.path); err != nil {
		return fmt.Errorf("recipe: barrier: %w", err)
	}
	if err := createPath(ctx, b.c, b.path); err != nil {
		return fmt.Errorf("recipe: barrier %s: set: %w", b.path, err)
	}
	return nil
}

// Remove lowers the barrier; a barrier that is down already is no error.
func (b *Barrier) Remove(ctx context.Context) error {
	if err := checkRecipe(b.c, b.path); err != nil {
		return fmt.Errorf("recipe: barrier: %w", err)
	}
	err := b.c.Delete(ctx, b.path, client.AnyVersion)
	if err != nil && !errors.Is(err, client.ErrNoNode) {
		return fmt.Errorf("recipe: barrier %s: remove: %w", b.path, err)
	}
	return nil
}

// Wait returns once the barrier is down (at once if it is down now), or
// with ctx's error. It needs no Set first: a barrier never set is down.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := checkRecipe(b.c, b.path); err != nil {
		return fmt.Errorf("recipe: barrier: %w", err)
	}
	if err := waitGone(ctx, b.c, b.path); err != nil {
		return fmt.Errorf("recipe: barrier %s: wait: %w", b.path, err)
	}
	return nil
}

// waitGone returns once path does not exist.
func waitGone(ctx context.Context, c *client.Client, path string) error {
	for {
		var changed <-chan client.WatchEvent
		st, err := c.Exists(ctx, path, client.WatchOnce(&changed))
		if err != nil {
			return err
		}
		if st == nil {
			return nil
		}
		// Any event, even ErrWatchLost after a reconnection, means: look
		// again (and watch again).
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ErrNotEntered is returned by DoubleBarrier.Leave without a successful
// Enter before it.
var ErrNotEntered = errors.New("recipe: double barrier not entered")

// DoubleBarrier lets a group of count participants start and finish a
// computation together (ZooKeeper's double barrier): Enter returns once
// count participants have entered, Leave once every one of them has left.
// Each participant is one DoubleBarrier value, on its own Client or sharing
// one; its methods are safe for concurrent use but meant to be called in
// order: Enter, then Leave.
//
// A participant is an ephemeral sequential child of path, and a persistent
// child "ready" marks that count were there at once, so that a fast
// participant that enters, works and leaves cannot strand a slow one that
// had not yet counted.
//
// A participant whose session ends (it crashed, or its Client was closed)
// is no longer there: before the barrier opens, it no longer counts, and
// the others wait for another to take its place; after it opened, it counts
// as having left, and Leave does not wait for it. A crashed participant's
// node stays until the cluster expires its session, so the others may wait
// up to its session timeout. More than count may enter once it is open.
//
// The barrier can be used again at the same path only once every
// participant has returned from Leave: one that enters while others are
// still leaving may find it open at once, and they wait for it to leave.
// A fresh path per round avoids the question.
type DoubleBarrier struct {
	c     *client.Client
	path  string
	count int

	mu       sync.Mutex
	entering bool
	node     string // full path of our participant node, once entered
	lost     chan struct{}
	stopLost func() bool
}

// NewDoubleBarrier returns a participant of the double barrier at path for
// count participants. It does no I/O: a bad path or count is reported by
// Enter.
func NewDoubleBarrier(c *client.Client, path string, count int) *DoubleBarrier {
	return &DoubleBarrier{c: c, path: path, count: count}
}

// readyNode is the child that marks the barrier open.
const readyNode = "ready"

// participantPrefix starts every participant's node name; an id of the
// participant follows, then the sequence number the cluster appends.
const participantPrefix = "p-"

// cleanupTimeout bounds the deletes a failed Enter makes on its way out,
// after the caller's context may have ended.
const cleanupTimeout = 10 * time.Second

// Enter joins the barrier and returns once count participants have
// joined (at once if the barrier is open already). Missing parents of path
// are created as persistent nodes. If ctx ends first, Enter withdraws the
// participant and returns ctx's error. It refuses to start while the
// Client's session is in jeopardy.
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	if err := checkRecipe(b.c, b.path); err != nil {
		return fmt.Errorf("recipe: double barrier: %w", err)
	}
	if b.count < 1 {
		return fmt.Errorf("recipe: double barrier %s: count %d: need at least one participant", b.path, b.count)
	}
	// The session context of the moment we join: membership is lost when
	// it ends, even if a later renewal gives the Client a fresh one.
	sess := b.c.Context()
	if sess.Err() != nil {
		return fmt.Errorf("recipe: double barrier %s: enter: %w", b.path, context.Cause(sess))
	}
	b.mu.Lock()
	if b.entering || b.node != "" {
		b.mu.Unlock()
		return fmt.Errorf("recipe: double barrier %s: Enter called again before Leave", b.path)
	}
	b.entering = true
	b.lost = make(chan struct{})
	lost := b.lost
	b.mu.Unlock()

	node, err := b.enter(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entering = false
	if err != nil {
		close(b.lost) // nothing to lose any more: never a member
		return fmt.Errorf("recipe: double barrier %s: enter: %w", b.path, err)
	}
	b.node = node
	b.stopLost = context.AfterFunc(sess, func() { close(lost) })
	return nil
}

func (b *DoubleBarrier) enter(ctx context.Context) (string, error) {
	prefix := participantPrefix + rand.Text() + "-"
	node, err := createProtected(ctx, b.c, b.path, prefix, client.Ephemeral(), client.Sequential())
	if err == nil {
		err = b.awaitReady(ctx)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if werr := withdraw(cctx, b.c, b.path, prefix); werr != nil {
			return "", errors.Join(err, fmt.Errorf("withdrawing: %w", werr))
		}
		return "", err
	}
	return node, nil
}

// awaitReady returns once the ready node exists, creating it when this
// participant finds count there.
func (b *DoubleBarrier) awaitReady(ctx context.Context) error {
	ready := b.path + "/" + readyNode
	for {
		// Watch before counting, so that a ready made just after the
		// count is not missed.
		var changed <-chan client.WatchEvent
		st, err := b.c.Exists(ctx, ready, client.WatchOnce(&changed))
		if err != nil {
			return err
		}
		if st != nil {
			return nil
		}
		kids, _, err := b.c.Children(ctx, b.path)
		if err != nil {
			return err
		}
		if len(participants(kids)) >= b.count {
			_, _, err := b.c.Create(ctx, ready, nil)
			switch {
			case err == nil, errors.Is(err, client.ErrNodeExists):
				return nil
			case !client.IsIndeterminate(err):
				return err
			}
			continue // maybe created: look again
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Leave leaves the barrier and returns once every participant has left
// (or its session has ended). If ctx ends first it returns ctx's error,
// and Leave may be called again. The last to go takes the ready node
// away, so the barrier is closed again for the next round.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	b.mu.Lock()
	node := b.node
	b.mu.Unlock()
	if node == "" {
		return fmt.Errorf("recipe: double barrier %s: leave: %w", b.path, ErrNotEntered)
	}
	if err := b.leave(ctx, node[len(b.path)+1:]); err != nil {
		return fmt.Errorf("recipe: double barrier %s: leave: %w", b.path, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLost()
	b.node = ""
	return nil
}

// leave is ZooKeeper's double barrier leave: the lowest participant waits
// for the others to go, highest first; every other one deletes its node
// and waits for the lowest, so each waits on one node and only the lowest
// one's going wakes them all.
func (b *DoubleBarrier) leave(ctx context.Context, me string) error {
	for {
		kids, _, err := b.c.Children(ctx, b.path)
		if err != nil {
			return err
		}
		ps := participants(kids)
		var wait string
		switch {
		case len(ps) == 0:
			return b.deleteIgnoringMissing(ctx, readyNode)
		case len(ps) == 1 && ps[0] == me:
			// Ready first: the others return as soon as we are gone.
			if err := b.deleteIgnoringMissing(ctx, readyNode); err != nil {
				return err
			}
			return b.deleteIgnoringMissing(ctx, me)
		case ps[0] == me:
			wait = ps[len(ps)-1]
		default:
			if slices.Contains(ps, me) {
				if err := b.deleteIgnoringMissing(ctx, me); err != nil {
					return err
				}
			}
			wait = ps[0]
		}
		if err := waitGone(ctx, b.c, b.path+"/"+wait); err != nil {
			return err
		}
	}
}

func (b *DoubleBarrier) deleteIgnoringMissing(ctx context.Context, name string) error {
	err := b.c.Delete(ctx, b.path+"/"+name, client.AnyVersion)
	if err != nil && !errors.Is(err, client.ErrNoNode) {
		return err
	}
	return nil
}

// Lost returns a channel closed when this participant's membership may be
// lost: the Client's session went into jeopardy, expired or was closed
// (its Context at the time of Enter ended), so the cluster may have deleted
// the participant's node and the others may have moved on without it.
// Before Enter it returns nil; after a failed Enter a closed channel; after
// Leave, the channel of the membership that ended, which is not closed by
// the leave itself.
func (b *DoubleBarrier) Lost() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost
}

// participants returns the participant node names among kids, in the
// order they joined (by the sequence number the cluster appended).
func participants(kids []string) []string {
	var ps []string
	for _, k := range kids {
		if strings.HasPrefix(k, participantPrefix) && len(k) > len(participantPrefix)+seqDigits {
			ps = append(ps, k)
		}
	}
	slices.SortFunc(ps, func(a, b string) int { return strings.Compare(seqOf(a), seqOf(b)) })
	return ps
}

// seqDigits is the length of the suffix of a sequential node.
const seqDigits = 10

func seqOf(name string) string { return name[len(name)-seqDigits:] }

// createProtected creates a sequential child of dir named prefix plus the
// sequence number, creating dir and its parents when missing. prefix must
// be unique to the caller: when a create's outcome is unknown, the child is
// looked for by it rather than created twice (go-zookeeper's protected
// create).
func createProtected(ctx context.Context, c *client.Client, dir, prefix string, opts ...client.CreateOption) (string, error) {
	const parentTries = 3 // dir is deleted again under us only by misuse
	for tries := 0; ; {
		name, _, err := c.Create(ctx, dir+"/"+prefix, nil, opts...)
		switch {
		case err == nil:
			return name, nil
		case errors.Is(err, client.ErrNoNode) && tries < parentTries:
			tries++
			if err := createPath(ctx, c, dir); err != nil {
				return "", err
			}
			continue
		case !client.IsIndeterminate(err) || ctx.Err() != nil:
			return "", err
		}
		kids, _, lerr := c.Children(ctx, dir)
		if lerr != nil {
			return "", errors.Join(err, lerr)
		}
		for _, k := range kids {
			if strings.HasPrefix(k, prefix) {
				return dir + "/" + k, nil
			}
		}
	}
}

// withdraw deletes dir's children named with prefix.
func withdraw(ctx context.Context, c *client.Client, dir, prefix string) error {
	kids, _, err := c.Children(ctx, dir)
	if errors.Is(err, client.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if err := c.Delete(ctx, dir+"/"+k, client.AnyVersion); err != nil && !errors.Is(err, client.ErrNoNode) {
			return err
		}
	}
	return nil
}

// createPath creates path as a persistent node, and each missing parent,
// like mkdir -p. An existing path is no error.
func createPath(ctx context.Context, c *client.Client, path string) error {
	_, _, err := c.Create(ctx, path, nil)
	if parent := path[:strings.LastIndexByte(path, '/')]; parent != "" && errors.Is(err, client.ErrNoNode) {
		// Parents first, then the node again; the common case, a parent
		// that exists, costs one create.
		if err := createPath(ctx, c, parent); err != nil {
			return err
		}
		_, _, err = c.Create(ctx, path, nil)
	}
	if err != nil && !errors.Is(err, client.ErrNodeExists) {
		return err
	}
	return nil
}

// checkRecipe refuses what no recipe can work with; the cluster checks the
// rest of path (BAD_PATH).
func checkRecipe(c *client.Client, path string) error {
	switch {
	case c == nil:
		return errors.New("no client")
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("path %q is not absolute", path)
	case path == "/":
		return errors.New("the root cannot be a recipe's node")
	case strings.HasSuffix(path, "/"):
		return fmt.Errorf("path %q ends with /", path)
	}
	return nil
}
