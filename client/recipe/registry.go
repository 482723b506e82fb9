package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/arbor-db/arbor/client"
)

// Errors of ServiceRegistry.
var (
	// ErrInstanceExists refuses to register an instance id that is
	// registered already (by any session, this one included).
	ErrInstanceExists = errors.New("recipe: service instance already registered")
	// ErrNoInstance is a picker's answer when the service has no live
	// instance.
	ErrNoInstance = errors.New("recipe: no live instance of the service")
)

// Instance is one instance of a service: its id (unique within the
// service), the address clients reach it at, and free-form metadata.
type Instance struct {
	ID       string
	Address  string
	Metadata map[string]string
}

// instanceData is what an instance's node holds, as JSON:
// {"address":"10.0.0.7:8080","metadata":{"zone":"a"}}. The id is the
// node's name.
type instanceData struct {
	Address  string            `json:"address"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ServiceRegistry registers instances of services under a root path, one
// ephemeral node per instance at ROOT/SERVICE/ID, and lets clients watch
// the live instances of a service. Missing parents of a service's node are
// created as container nodes, so a service nobody provides disappears.
type ServiceRegistry struct {
	c    *client.Client
	root string
}

// NewServiceRegistry returns a registry under root (such as "/services").
// It does not talk to the cluster.
func NewServiceRegistry(c *client.Client, root string) (*ServiceRegistry, error) {
	if c == nil {
		return nil, fmt.Errorf("recipe: NewServiceRegistry: nil client: %w", client.ErrBadRequest)
	}
	if err := checkRecipePath(root); err != nil {
		return nil, fmt.Errorf("recipe: NewServiceRegistry: %w", err)
	}
	return &ServiceRegistry{c: c, root: root}, nil
}

// checkName rejects a service name or instance id that is not one path
// component. The cluster checks the characters (BAD_PATH).
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s: %w", what, client.ErrBadPath)
	case strings.Contains(name, "/"):
		return fmt.Errorf("%s %q contains /: %w", what, name, client.ErrBadPath)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q is not a node name: %w", what, name, client.ErrBadPath)
	}
	return nil
}

// dir returns the path of a service's node.
func (r *ServiceRegistry) dir(service string) (string, error) {
	if err := checkName("service name", service); err != nil {
		return "", fmt.Errorf("recipe: service registry %s: %w", r.root, err)
	}
	return r.root + "/" + service, nil
}

// Register registers inst as a live instance of service for as long as
// this client's session lasts, or until Deregister. It fails with
// ErrInstanceExists when the id is registered already.
func (r *ServiceRegistry) Register(ctx context.Context, service string, inst Instance) (*Registration, error) {
	dir, err := r.dir(service)
	if err != nil {
		return nil, err
	}
	if err := checkName("instance id", inst.ID); err != nil {
		return nil, fmt.Errorf("recipe: registering in %s: %w", dir, err)
	}
	if inst.Address == "" {
		return nil, fmt.Errorf("recipe: registering %s in %s: empty address: %w", inst.ID, dir, client.ErrBadRequest)
	}
	data, err := json.Marshal(instanceData{Address: inst.Address, Metadata: inst.Metadata})
	if err != nil {
		return nil, fmt.Errorf("recipe: registering %s in %s: %w", inst.ID, dir, err)
	}
	node := dir + "/" + inst.ID
	if err := r.create(ctx, dir, node, data); err != nil {
		return nil, fmt.Errorf("recipe: registering %s: %w", node, err)
	}
	g, err := guardNode(ctx, r.c, node)
	if err != nil {
		if werr := withdrawNode(ctx, r.c, node); werr != nil {
			err = errors.Join(err, werr)
		}
		return nil, fmt.Errorf("recipe: registering %s: %w", node, err)
	}
	inst.Metadata = maps.Clone(inst.Metadata)
	return &Registration{c: r.c, node: node, inst: inst, guard: g}, nil
}

// create makes the instance's ephemeral node, and the service's node if
// needed. A create whose outcome is unknown is ours if the node is there,
// owned by this session, with our data.
func (r *ServiceRegistry) create(ctx context.Context, dir, node string, data []byte) error {
	for {
		if err := createContainer(ctx, r.c, dir, nil); err != nil {
			return err
		}
		_, _, err := r.c.Create(ctx, node, data, client.Ephemeral())
		switch {
		case err == nil:
			return nil
		case errors.Is(err, client.ErrNoNode):
			continue // the container was reaped in between: make it again
		case errors.Is(err, client.ErrNodeExists):
			return fmt.Errorf("%w: %s", ErrInstanceExists, node)
		case !client.IsIndeterminate(err):
			return err
		}
		got, st, gerr := r.c.Get(ctx, node)
		switch {
		case errors.Is(gerr, client.ErrNoNode):
			continue // not applied: create again
		case gerr != nil:
			return errors.Join(err, gerr)
		case st.EphemeralOwner == r.c.Session() && string(got) == string(data):
			return nil
		default:
			return fmt.Errorf("%w: %s", ErrInstanceExists, node)
		}
	}
}

// Instances reads the live instances of service once, sorted by id. Nodes
// whose data is not an instance's are left out.
func (r *ServiceRegistry) Instances(ctx context.Context, service string) ([]Instance, error) {
	dir, err := r.dir(service)
	if err != nil {
		return nil, err
	}
	st, err := readInstances(ctx, r.c, dir)
	if err != nil {
		return nil, fmt.Errorf("recipe: reading %s: %w", dir, err)
	}
	return st.list(), nil
}

// Registration is one registered instance.
type Registration struct {
	c     *client.Client
	node  string
	inst  Instance
	guard *nodeGuard

	mu   sync.Mutex
	done bool
}

// Instance returns the registered instance.
func (g *Registration) Instance() Instance { return g.inst }

// Node returns the path of the instance's node.
func (g *Registration) Node() string { return g.node }

// Lost returns a channel that is closed when the registration can no
// longer be relied on: the session entered Jeopardy, expired or was closed
// (the client's Context at registration is done), the node was deleted by
// someone else, or Deregister was called. A registration is never renewed
// behind the caller's back: register again, on a new client if the session
// expired.
func (g *Registration) Lost() <-chan struct{} { return g.guard.lost }

// Deregister deletes the instance's node. Call it in every case, also after
// Lost: it stops the registration's goroutine. It returns nil once the node
// is gone, also when it was already gone or the session is over; on another
// error Deregister may be called again.
func (g *Registration) Deregister(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	g.guard.close(ctx)
	err := g.c.Delete(ctx, g.node, client.AnyVersion)
	if err != nil && !errors.Is(err, client.ErrNoNode) && !sessionOver(err) {
		return fmt.Errorf("recipe: deregistering %s: %w", g.node, err)
	}
	g.done = true
	return nil
}

// serviceWatchBuffer is the event buffer of a ServiceWatcher's watch; a
// variable so that tests can make it overflow.
var serviceWatchBuffer = client.DefaultWatchBuffer

// ServiceWatcher keeps the live set of a service's instances, and reports
// every new set on Updates.
type ServiceWatcher struct {
	c       *client.Client
	dir     string
	updates chan []Instance
	current atomic.Pointer[[]Instance]
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	done    chan struct{}

	mu  sync.Mutex
	w   *client.Watcher // the watch in use; the goroutine's until done
	err error
}

// Watch returns a watcher of service's live instances. When it returns, the
// first set is both on Updates and from Instances. Call Close when done.
func (r *ServiceRegistry) Watch(ctx context.Context, service string) (*ServiceWatcher, error) {
	dir, err := r.dir(service)
	if err != nil {
		return nil, err
	}
	sw := &ServiceWatcher{c: r.c, dir: dir, updates: make(chan []Instance, 1), done: make(chan struct{})}
	w, st, err := sw.sync(ctx)
	if err != nil {
		return nil, fmt.Errorf("recipe: watching %s: %w", dir, err)
	}
	sw.w = w
	sw.ctx, sw.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sw.publish(st.list())
	go sw.run(st)
	return sw, nil
}

// sync sets a watch and then reads the current set. Events of changes the
// reads already saw are skipped by serviceState.apply.
func (sw *ServiceWatcher) sync(ctx context.Context) (*client.Watcher, *serviceState, error) {
	w, err := sw.c.Watch(ctx, sw.dir, client.Recursive(), client.WatchBuffer(serviceWatchBuffer))
	if err != nil {
		return nil, nil, err
	}
	st, err := readInstances(ctx, sw.c, sw.dir)
	if err != nil {
		_ = w.Close(ctx)
		return nil, nil, err
	}
	return w, st, nil
}

// run applies the watch's events, publishing the set after each batch that
// changed it, until Close or the end of the session. An overflowed watch is
// set again from scratch.
func (sw *ServiceWatcher) run(st *serviceState) {
	defer close(sw.done)
	defer close(sw.updates)
	w := sw.w
	for {
		var changed bool
		select {
		case <-sw.ctx.Done():
			sw.end(client.ErrWatchClosed)
			return
		case ev, ok := <-w.Events():
			if ok {
				changed = st.apply(ev)
				changed = st.drain(w) || changed
				break
			}
			if err := w.Err(); !errors.Is(err, client.ErrWatchOverflow) {
				sw.end(err)
				return
			}
			nw, nst, err := sw.sync(sw.ctx)
			if err != nil {
				if sw.ctx.Err() != nil {
					err = client.ErrWatchClosed
				}
				sw.end(err)
				return
			}
			sw.mu.Lock()
			sw.w = nw
			sw.mu.Unlock()
			w, st, changed = nw, nst, true
		}
		if changed {
			sw.publish(st.list())
		}
	}
}

// publish makes set current and puts it on Updates in place of a set
// nobody has read yet. Only one goroutine at a time publishes.
func (sw *ServiceWatcher) publish(set []Instance) {
	sw.current.Store(&set)
	select {
	case <-sw.updates:
	default:
	}
	sw.updates <- set
}

func (sw *ServiceWatcher) end(err error) {
	sw.mu.Lock()
	sw.err = err
	sw.mu.Unlock()
}

// Updates returns the channel of the service's live sets, sorted by id. It
// holds only the newest set: a reader that falls behind skips the sets in
// between but always gets the latest. It is closed when the watcher ends
// (Close, or the end of the session: see Err). The slices are shared:
// do not modify them.
func (sw *ServiceWatcher) Updates() <-chan []Instance { return sw.updates }

// Instances returns the current set, sorted by id. Do not modify it.
func (sw *ServiceWatcher) Instances() []Instance { return *sw.current.Load() }

// Err returns why the watcher ended, or nil while it runs:
// client.ErrWatchClosed after Close, or the session's end.
func (sw *ServiceWatcher) Err() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.err
}

// Close stops the watcher and removes its watch; Updates is closed.
func (sw *ServiceWatcher) Close(ctx context.Context) error {
	sw.cancel()
	<-sw.done
	sw.mu.Lock()
	w := sw.w
	sw.mu.Unlock()
	err := w.Close(ctx)
	if errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrSessionExpired) {
		return nil // the watch went with the session
	}
	return err
}

// pick returns the set to pick from, or why there is none.
func (sw *ServiceWatcher) pick() ([]Instance, error) {
	if err := sw.Err(); err != nil {
		return nil, fmt.Errorf("recipe: picking from %s: watch ended: %w", sw.dir, err)
	}
	set := sw.Instances()
	if len(set) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoInstance, sw.dir)
	}
	return set, nil
}

// RoundRobin picks the instances of a watched service in turn. It is safe
// for concurrent use.
type RoundRobin struct {
	sw   *ServiceWatcher
	next atomic.Uint64
}

// RoundRobin returns a picker that goes through the current set in turn.
func (sw *ServiceWatcher) RoundRobin() *RoundRobin { return &RoundRobin{sw: sw} }

// Pick returns the next instance of the current set. It fails with
// ErrNoInstance when there is none, and once the watcher has ended (its
// set is no longer kept up to date).
func (p *RoundRobin) Pick() (Instance, error) {
	set, err := p.sw.pick()
	if err != nil {
		return Instance{}, err
	}
	return set[(p.next.Add(1)-1)%uint64(len(set))], nil
}

// Random picks an instance of a watched service at random. It is safe for
// concurrent use.
type Random struct{ sw *ServiceWatcher }

// Random returns a picker that chooses uniformly from the current set.
func (sw *ServiceWatcher) Random() *Random { return &Random{sw: sw} }

// Pick returns a random instance of the current set, failing as
// RoundRobin.Pick does.
func (p *Random) Pick() (Instance, error) {
	set, err := p.sw.pick()
	if err != nil {
		return Instance{}, err
	}
	return set[rand.IntN(len(set))], nil
}

// serviceState is a service's instances as read and then changed by watch
// events, with what it needs to skip events of changes it already holds.
type serviceState struct {
	dir   string
	nodes map[string]instanceNode // by id: every child, instance or not
	// floor: every create and delete of a child up to this zxid is in
	// nodes (the pzxid the children were listed at).
	floor uint64
}

type instanceNode struct {
	mzxid uint64 // every change of the node up to this zxid is held
	inst  Instance
	ok    bool // the data is an instance's
}

// readInstances lists dir's children and reads each.
func readInstances(ctx context.Context, c *client.Client, dir string) (*serviceState, error) {
	st := &serviceState{dir: dir, nodes: map[string]instanceNode{}}
	kids, stat, err := c.Children(ctx, dir)
	if errors.Is(err, client.ErrNoNode) {
		return st, nil // every change from now on comes as an event
	}
	if err != nil {
		return nil, err
	}
	st.floor = stat.Pzxid
	for _, id := range kids {
		data, s, err := c.Get(ctx, dir+"/"+id)
		if errors.Is(err, client.ErrNoNode) {
			continue // deleted after the listing: its event comes
		}
		if err != nil {
			return nil, err
		}
		st.put(id, data, s.Mzxid)
	}
	return st, nil
}

func (st *serviceState) put(id string, data []byte, zxid uint64) {
	n := instanceNode{mzxid: zxid, inst: Instance{ID: id}}
	var d instanceData
	if json.Unmarshal(data, &d) == nil && d.Address != "" {
		n.inst.Address, n.inst.Metadata, n.ok = d.Address, d.Metadata, true
	}
	st.nodes[id] = n
}

// apply applies one event and reports whether the set changed. An event
// at or below what the state holds for its node is a change the reads
// already saw (or, after a reconnection, saw before the event came).
func (st *serviceState) apply(ev client.WatchEvent) bool {
	if ev.Type == client.EventResync {
		st.nodes, st.floor = map[string]instanceNode{}, ev.Zxid
		for _, n := range ev.Nodes {
			if id, ok := st.child(n.Path); ok {
				st.put(id, n.Data, n.Stat.Mzxid)
			}
		}
		return true
	}
	id, ok := st.child(ev.Path)
	if !ok {
		return false // the service's node itself, or deeper
	}
	n, present := st.nodes[id]
	switch ev.Type {
	case client.EventCreated:
		if ev.Zxid <= max(st.floor, n.mzxid) {
			return false
		}
		st.put(id, ev.Data, ev.Zxid)
	case client.EventDeleted:
		if !present || ev.Zxid <= max(st.floor, n.mzxid) {
			return false
		}
		delete(st.nodes, id)
	case client.EventData:
		if !present || ev.Zxid <= n.mzxid {
			return false
		}
		st.put(id, ev.Data, ev.Zxid)
	default:
		return false
	}
	return true
}

// drain applies the events already waiting, so that one set is published
// for a burst of changes.
func (st *serviceState) drain(w *client.Watcher) bool {
	changed := false
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return changed // run sees the end next
			}
			changed = st.apply(ev) || changed
		default:
			return changed
		}
	}
}

// child returns the id of a direct child of the service's node.
func (st *serviceState) child(path string) (string, bool) {
	id, ok := strings.CutPrefix(path, st.dir+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// list returns the instances, sorted by id.
func (st *serviceState) list() []Instance {
	set := make([]Instance, 0, len(st.nodes))
	for _, n := range st.nodes {
		if n.ok {
			set = append(set, n.inst)
		}
	}
	slices.SortFunc(set, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return set
}
