package recipe

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client"
)

// Errors of Semaphore.
var (
	// ErrNoPermit is TryAcquire's answer when every permit is held.
	ErrNoPermit = errors.New("recipe: no permit free")
	// ErrPermitsMismatch refuses to take part in a semaphore whose path
	// records another number of permits than this Semaphore was made with.
	ErrPermitsMismatch = errors.New("recipe: semaphore records another number of permits")
	// ErrWaiterDeleted ends an Acquire whose waiting node was deleted by
	// someone else (or with the session).
	ErrWaiterDeleted = errors.New("recipe: semaphore waiter node was deleted")
)

// grantedMark is the data a permit node is given once it holds a permit
// and others wait behind it: it wakes the waiter right behind (see await).
const grantedMark = "granted"

// withdrawTimeout bounds the clean-up of a node after the caller's context
// is done: it runs on a context of its own.
const withdrawTimeout = 10 * time.Second

// Semaphore hands out up to a fixed number of permits on a path to any
// number of clients. A holder is an ephemeral sequential child of the path
// that is among the first permits children by sequence number, so permits
// go in the order they were asked for, and a holder's session ending frees
// its permit.
//
// The number of permits is stored in the path's data (as decimal text) by
// whoever creates it, and every participant must use the same number:
// Acquire refuses a different one with ErrPermitsMismatch. The path is
// created as a container node (with any missing parents), so the server
// removes it once the last holder and waiter are gone, and the next user
// may choose another number. A path that already exists with no data is
// claimed by the first Acquire.
//
// A Semaphore is safe for concurrent use; each Acquire asks for one more
// permit, also from the same client.
type Semaphore struct {
	c       *client.Client
	path    string
	permits int
}

// NewSemaphore returns a semaphore of permits permits on path. It does not
// talk to the cluster.
func NewSemaphore(c *client.Client, path string, permits int) (*Semaphore, error) {
	if c == nil {
		return nil, fmt.Errorf("recipe: NewSemaphore: nil client: %w", client.ErrBadRequest)
	}
	if err := checkRecipePath(path); err != nil {
		return nil, fmt.Errorf("recipe: NewSemaphore: %w", err)
	}
	if permits < 1 {
		return nil, fmt.Errorf("recipe: NewSemaphore %s: %d permits, want at least 1: %w", path, permits, client.ErrBadRequest)
	}
	return &Semaphore{c: c, path: path, permits: permits}, nil
}

// Path returns the semaphore's path.
func (s *Semaphore) Path() string { return s.path }

// Permits returns the number of permits.
func (s *Semaphore) Permits() int { return s.permits }

// Acquire waits for a permit and returns it. If ctx is done first, Acquire
// withdraws its node and returns an error matching ctx.Err() with
// errors.Is. It fails with ErrPermitsMismatch when the path records
// another number of permits.
func (s *Semaphore) Acquire(ctx context.Context) (*Permit, error) {
	return s.acquire(ctx, true)
}

// TryAcquire returns a permit if one is free now, and otherwise withdraws
// its node and fails with ErrNoPermit. It still makes a few round trips to
// the cluster, bounded by ctx.
func (s *Semaphore) TryAcquire(ctx context.Context) (*Permit, error) {
	return s.acquire(ctx, false)
}

func (s *Semaphore) acquire(ctx context.Context, wait bool) (*Permit, error) {
	node, token, err := s.join(ctx)
	if err != nil {
		return nil, fmt.Errorf("recipe: semaphore %s: %w", s.path, err)
	}
	p, err := s.grant(ctx, node, token, wait)
	if err != nil {
		if werr := withdrawNode(ctx, s.c, node); werr != nil {
			err = errors.Join(err, werr)
		}
		return nil, fmt.Errorf("recipe: semaphore %s: %w", s.path, err)
	}
	return p, nil
}

// grant checks the permit count, waits for admission and sets up the
// permit. On error the caller withdraws node.
func (s *Semaphore) grant(ctx context.Context, node string, token uint64, wait bool) (*Permit, error) {
	if err := s.checkPermits(ctx); err != nil {
		return nil, err
	}
	behind, err := s.await(ctx, node, wait)
	if err != nil {
		return nil, err
	}
	if behind {
		// The waiter right behind watches this node's data (see await).
		if _, err := s.c.Set(ctx, node, []byte(grantedMark), client.AnyVersion); err != nil {
			return nil, err
		}
	}
	g, err := guardNode(ctx, s.c, node)
	if err != nil {
		return nil, err
	}
	return &Permit{c: s.c, node: node, token: token, guard: g}, nil
}

// join creates this acquisition's ephemeral sequential child, creating the
// path first if needed, and returns its name and czxid. The child's name
// starts with a random id, so that a create whose answer was lost can be
// found again (ZooKeeper's protected create).
func (s *Semaphore) join(ctx context.Context) (string, uint64, error) {
	prefix := s.path + "/" + rand.Text() + "-permit-"
	data := []byte(strconv.Itoa(s.permits))
	for {
		if err := createContainer(ctx, s.c, s.path, data); err != nil {
			return "", 0, err
		}
		node, stat, err := s.c.Create(ctx, prefix, nil, client.Ephemeral(), client.Sequential())
		switch {
		case err == nil:
			return node, stat.Czxid, nil
		case errors.Is(err, client.ErrNoNode):
			continue // the container was reaped in between: make it again
		case !client.IsIndeterminate(err):
			return "", 0, err
		}
		node, token, ferr := s.findOwn(ctx, prefix)
		switch {
		case ferr != nil:
			// Ours may exist, or appear later: remove what is there now.
			s.removeOwn(ctx, prefix)
			return "", 0, errors.Join(err, ferr)
		case node != "":
			return node, token, nil
		}
		// Not applied: create again. Should the first create still be
		// applied later, await deletes the extra node.
	}
}

// findOwn looks for this acquisition's child after a create whose outcome
// is unknown: "" if there is none.
func (s *Semaphore) findOwn(ctx context.Context, prefix string) (string, uint64, error) {
	kids, _, err := s.c.Children(ctx, s.path)
	if errors.Is(err, client.ErrNoNode) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	for _, k := range kids {
		node := s.path + "/" + k
		if !strings.HasPrefix(node, prefix) {
			continue
		}
		st, err := s.c.Exists(ctx, node)
		if err != nil {
			return "", 0, err
		}
		if st != nil {
			return node, st.Czxid, nil
		}
	}
	return "", 0, nil
}

// removeOwn deletes, best effort, every child made by this acquisition.
func (s *Semaphore) removeOwn(ctx context.Context, prefix string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	kids, _, err := s.c.Children(ctx, s.path)
	if err != nil {
		return
	}
	for _, k := range kids {
		if node := s.path + "/" + k; strings.HasPrefix(node, prefix) {
			_ = withdrawNode(ctx, s.c, node)
		}
	}
}

// checkPermits refuses a path that records another number of permits, and
// records ours on a path that records none. It runs once this
// acquisition's child exists, so the path read is the one the child is in:
// a container is not removed while it has children.
func (s *Semaphore) checkPermits(ctx context.Context) error {
	want := strconv.Itoa(s.permits)
	for {
		data, stat, err := s.c.Get(ctx, s.path)
		if err != nil {
			return err
		}
		switch {
		case string(data) == want:
			return nil
		case len(data) > 0:
			return fmt.Errorf("%w: %s holds %q, this Semaphore has %d permits", ErrPermitsMismatch, s.path, data, s.permits)
		}
		_, err = s.c.Set(ctx, s.path, []byte(want), stat.Version)
		if err == nil {
			return nil
		}
		if !errors.Is(err, client.ErrBadVersion) && !client.IsIndeterminate(err) {
			return err
		}
		// Someone else wrote first, or the outcome is unknown: read again.
	}
}

// await waits until node is among the first s.permits children by sequence
// number (without wait it fails with ErrNoPermit instead) and reports
// whether other children wait behind it.
//
// Only one waiter wakes for each change. The first waiter, at position
// permits (0-based), is admitted by the release of any holder, whichever
// goes first, so it watches the children of the path (a newcomer wakes it
// too, for one read). Every later waiter can only become the first waiter
// once the waiter right before it is admitted or goes, so it watches that
// one node; an admitted node with waiters behind it wakes the next by
// writing grantedMark, one write per contended grant. Nodes only move up:
// a new child always sorts last.
func (s *Semaphore) await(ctx context.Context, node string, wait bool) (behind bool, err error) {
	name := node[len(s.path)+1:]
	watchKids := false
	for {
		var woken <-chan client.WatchEvent
		var opts []client.ReadOption
		if watchKids {
			opts = append(opts, client.WatchOnce(&woken))
		}
		kids, _, err := s.c.Children(ctx, s.path, opts...)
		if err != nil {
			return false, err
		}
		queue, err := s.queue(ctx, kids, name)
		if err != nil {
			return false, err
		}
		i := slices.Index(queue, name)
		switch {
		case i < 0:
			return false, fmt.Errorf("%w: %s", ErrWaiterDeleted, node)
		case i < s.permits:
			return i < len(queue)-1, nil
		case !wait:
			return false, ErrNoPermit
		case i == s.permits && !watchKids:
			watchKids = true // list again, this time with a watch
			continue
		case i > s.permits:
			watchKids = false
			prev := s.path + "/" + queue[i-1]
			data, _, err := s.c.Get(ctx, prev, client.WatchOnce(&woken))
			if errors.Is(err, client.ErrNoNode) || string(data) == grantedMark {
				continue // it went, or was admitted already: look again
			}
			if err != nil {
				return false, err
			}
		}
		select {
		case <-woken: // any event, also ErrWatchLost, means look again
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// queue returns the names of the semaphore's children in sequence order,
// leaving out children that are not permit nodes and deleting extra nodes
// of this acquisition (a lost create applied late).
func (s *Semaphore) queue(ctx context.Context, kids []string, own string) ([]string, error) {
	ownID, _, _ := parsePermitName(own)
	type entry struct {
		name string
		seq  uint64
	}
	var es []entry
	for _, k := range kids {
		id, seq, ok := parsePermitName(k)
		if !ok {
			continue
		}
		if id == ownID && k != own {
			if err := s.c.Delete(ctx, s.path+"/"+k, client.AnyVersion); err != nil && !errors.Is(err, client.ErrNoNode) {
				return nil, err
			}
			continue
		}
		es = append(es, entry{k, seq})
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.name
	}
	return names, nil
}

// parsePermitName splits "ID-permit-SEQ" into ID and SEQ.
func parsePermitName(name string) (id string, seq uint64, ok bool) {
	id, digits, found := strings.Cut(name, "-permit-")
	if !found || id == "" || digits == "" {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id, seq, true
}

// Permit is one permit of a Semaphore, held until Release or until it is
// lost.
type Permit struct {
	c     *client.Client
	node  string
	token uint64
	guard *nodeGuard

	mu       sync.Mutex
	released bool
}

// Token returns the permit's fencing token: the czxid of its node. Every
// acquisition of the semaphore gets a larger one than every acquisition
// that asked before it, so a resource that remembers the largest token it
// has seen can refuse a holder whose permit was lost and given to someone
// else.
func (p *Permit) Token() uint64 { return p.token }

// Node returns the path of the permit's node.
func (p *Permit) Node() string { return p.node }

// Lost returns a channel that is closed when the permit can no longer be
// relied on: the session entered Jeopardy, expired or was closed (the
// client's Context at grant time is done), its node was deleted by someone
// else, or Release was called. Stop acting on the permit's behalf then.
func (p *Permit) Lost() <-chan struct{} { return p.guard.lost }

// Release gives the permit back by deleting its node. Call it in every case,
// also after Lost: it stops the permit's goroutine. It returns nil once the
// node is gone, also when it was already gone or the session is over; on
// another error (such as ctx ending first) the permit is still held and
// Release may be called again.
func (p *Permit) Release(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		return nil
	}
	p.guard.close(ctx)
	err := p.c.Delete(ctx, p.node, client.AnyVersion)
	if err != nil && !errors.Is(err, client.ErrNoNode) && !sessionOver(err) {
		return fmt.Errorf("recipe: releasing %s: %w", p.node, err)
	}
	p.released = true
	return nil
}

// sessionOver reports an error after which the session's ephemeral nodes
// are gone or going.
func sessionOver(err error) bool {
	return errors.Is(err, client.ErrSessionExpired) || errors.Is(err, client.ErrClosed)
}

// withdrawNode deletes a node this client made for a grant that failed. It
// runs on its own context, since ctx may be what ended the grant.
func withdrawNode(ctx context.Context, c *client.Client, node string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	err := c.Delete(ctx, node, client.AnyVersion)
	if err == nil || errors.Is(err, client.ErrNoNode) || sessionOver(err) {
		return nil
	}
	return fmt.Errorf("recipe: withdrawing %s failed, it stays until the session ends: %w", node, err)
}

// nodeGuard closes lost when a node this session owns stops being
// reliable: the session's Context is done, or the node is deleted. It owns
// one goroutine, stopped by close or by the loss.
type nodeGuard struct {
	w    *client.Watcher
	lost chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// guardNode starts guarding node, with the client's Context as it is now.
func guardNode(ctx context.Context, c *client.Client, node string) (*nodeGuard, error) {
	sess := c.Context()
	w, err := c.Watch(ctx, node)
	if err != nil {
		return nil, err
	}
	// Read after the watch is set: a delete before it shows here, one
	// after it comes as an event.
	st, err := c.Exists(ctx, node)
	if err != nil {
		_ = w.Close(ctx)
		return nil, err
	}
	g := &nodeGuard{w: w, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run(sess, node, st == nil)
	return g, nil
}

func (g *nodeGuard) run(sess context.Context, node string, gone bool) {
	defer close(g.done)
	defer close(g.lost)
	for !gone {
		select {
		case <-sess.Done():
			return
		case <-g.stop:
			return
		case ev, ok := <-g.w.Events():
			// A watch that ended (session over, overflow) can no longer
			// tell a delete: count the node as lost.
			gone = !ok ||
				ev.Type == client.EventDeleted && ev.Path == node ||
				ev.Type == client.EventResync && len(ev.Nodes) == 0
		}
	}
}

// close stops the goroutine and removes the watch. Errors of the unwatch
// are dropped: the member drops a watch with its connection anyway.
func (g *nodeGuard) close(ctx context.Context) {
	g.once.Do(func() { close(g.stop) })
	<-g.done
	_ = g.w.Close(ctx)
}

// createContainer creates path as a container node with data, and any
// missing parents as containers without data. A path that exists already
// is fine; so is a create whose outcome is unknown, since what follows
// finds out whether the path is there.
func createContainer(ctx context.Context, c *client.Client, path string, data []byte) error {
	for {
		_, _, err := c.Create(ctx, path, data, client.Container())
		switch {
		case err == nil, errors.Is(err, client.ErrNodeExists), client.IsIndeterminate(err):
			return nil
		case !errors.Is(err, client.ErrNoNode):
			return err
		}
		parent := path[:strings.LastIndexByte(path, '/')]
		if parent == "" {
			return err // the root always exists: not a missing parent
		}
		if err := createContainer(ctx, c, parent, nil); err != nil {
			return err
		}
	}
}

// checkRecipePath rejects what the recipes cannot use as their own node:
// the root, a relative path, a trailing or doubled slash. The cluster
// checks the rest (BAD_PATH).
func checkRecipePath(path string) error {
	switch {
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("path %q is not absolute: %w", path, client.ErrBadPath)
	case path == "/":
		return fmt.Errorf("path %q is the root, want a node of its own: %w", path, client.ErrBadPath)
	case strings.HasSuffix(path, "/"):
		return fmt.Errorf("path %q ends with /: %w", path, client.ErrBadPath)
	case strings.Contains(path, "//"):
		return fmt.Errorf("path %q has an empty component: %w", path, client.ErrBadPath)
	}
	return nil
}
