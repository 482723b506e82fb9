package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
	"github.com/arbor-db/arbor/watch"
)

// errSessionExpired is the apply result of a command whose session does not
// exist (expired, closed or never created) at its zxid.
var errSessionExpired = errors.New("server: session expired or unknown")

// errUndecodable ends the member: a committed command it cannot decode.
var errUndecodable = errors.New("server: cannot apply a committed command")

// errVersionGate is the result of a command whose kind the cluster version
// does not allow yet.
var errVersionGate = errors.New("server: the cluster version does not allow this command yet")

// membersPath holds one node per member with its published attributes.
const membersPath = tree.Reserved + "/members"

// stateMachine is Arbor's replicated state: the tree and the session table.
// raftnode's one goroutine applies entries (the only writer, under mu);
// readers take mu.RLock.
type stateMachine struct {
	log   *slog.Logger
	waits *waitRegistry

	mu       sync.RWMutex
	tree     *tree.Tree
	sessions *session.Table
	lastTime int64 // greatest command time applied: apply time never goes back
	// origins holds, per proposing member, the highest seq applied. A
	// command whose seq is not above it is a duplicate or arrived out of
	// order (the network duplicated or reordered a forwarded proposal):
	// every member skips it alike. Part of the snapshot.
	origins map[uint64]uint64
	// onStale is told of a skipped command's origin and the high-water
	// mark it fell under; it runs outside mu and must not block.
	onStale func(member, hw uint64)
	// onSessions is told, after each batch and outside mu, of the sessions
	// the batch created, ended or moved; onRestore after a snapshot was
	// restored. Both run on the apply goroutine and must not block.
	onSessions func([]sessionEvent)
	onRestore  func()

	// supported is the highest cluster version this member's code runs;
	// clusterVersion is the replicated one (part of the snapshot from 2).
	supported      uint64
	clusterVersion atomic.Uint64

	applied atomic.Uint64

	// Watches (see view.go for the locking). apply collects each command's
	// tree events in cmdEvents, records them in history and matches them
	// to watches, all under mu, and queues what fired on the connections
	// (never blocking) before it releases mu: a read evaluated after the
	// change finds its event already queued, so the writer can send it
	// first. The history is not replicated: a member starts it empty at
	// the index it restored or started from.
	watchMu   sync.Mutex
	watches   *watch.Registry[*conn]
	history   *watch.History
	cmdEvents []tree.Event
	fired     []watch.Fired[*conn]
	// onWatchesLost is told, under mu and before the restored index is
	// visible, of the connections whose watches a snapshot restore
	// dropped (the changes in between have no events); it must not block.
	onWatchesLost func([]*conn)

	// Lock and election waiters of this member's connections (lockops.go),
	// under the same locking as watches. grants holds the children the
	// command being applied granted (grantAfterDeletes), for publish.
	waiters lockWaiters
	grants  []string

	// appliedMu guards appliedCh, which is closed and replaced after every
	// batch so that waitApplied can block without polling.
	appliedMu sync.Mutex
	appliedCh chan struct{}
}

var _ raftnode.StateMachine = (*stateMachine)(nil)

func newStateMachine(log *slog.Logger, waits *waitRegistry) *stateMachine {
	sm := &stateMachine{
		log:        log,
		waits:      waits,
		tree:       tree.New(),
		sessions:   session.NewTable(),
		origins:    make(map[uint64]uint64),
		onStale:    func(uint64, uint64) {},
		onSessions: func([]sessionEvent) {},
		onRestore:  func() {},
		supported:  currentClusterVersion,
		appliedCh:  make(chan struct{}),
		watches:    watch.NewRegistry[*conn](),
		waiters:    newLockWaiters(),
		history:    watch.NewHistory(defaultHistoryEvents, defaultHistoryBytes, 0),

		onWatchesLost: func([]*conn) {},
	}
	sm.clusterVersion.Store(1)
	return sm
}

// currentClusterVersion is the highest cluster version this code runs. 1:
// the core. 2: session expiry and moves, container and TTL reaping, and the
// cluster version itself in the snapshot. 3: lock and election commands.
const currentClusterVersion = 3

// sessionEventKind says what happened to a session.
type sessionEventKind uint8

const (
	sessionCreated sessionEventKind = iota + 1
	sessionClosed
	sessionExpired
	sessionMoved
)

// sessionEvent is one change to the session table, for the member's
// liveness tracking and its connections.
type sessionEvent struct {
	Kind      sessionEventKind
	ID        uint64
	TimeoutMs int64  // created
	MovedTo   uint64 // moved: the member now serving it
	MovedConn uint64 // moved: that member's connection
}

// sessionID maps an entry index to a session id with splitmix64's finalizer:
// a bijection of uint64 with mix(0) = 0, so ids are unique, never 0 for the
// indexes raft uses (>= 1), deterministic and look random.
func sessionID(index uint64) uint64 {
	z := index
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Apply implements raftnode.StateMachine. A committed command this member
// cannot decode is fatal: skipping it would let this member's state drift
// from the others' without a word (a rolling upgrade that proposed a kind
// this version does not know). The cluster version gate keeps that from
// happening; this is the backstop.
func (sm *stateMachine) Apply(entries []raftnode.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	var out []delivery
	var sevs []sessionEvent
	sm.mu.Lock()
	for _, e := range entries {
		if e.Data == nil {
			continue
		}
		c, err := decodeCommand(e.Data)
		if err != nil {
			sm.applied.Store(e.Index - 1)
			sm.mu.Unlock()
			sm.deliver(out, sevs)
			return fmt.Errorf("%w: committed entry %d (term %d): %w", errUndecodable, e.Index, e.Term, err)
		}
		if v := c.Type.introduced(); v > sm.supported {
			sm.applied.Store(e.Index - 1)
			sm.mu.Unlock()
			sm.deliver(out, sevs)
			return fmt.Errorf("%w: committed entry %d (term %d) is a command of cluster version %d; this member runs up to %d: upgrade it",
				errUndecodable, e.Index, e.Term, v, sm.supported)
		}
		if m := c.Origin.Member; m != 0 {
			if hw := sm.origins[m]; c.Origin.Seq <= hw {
				sm.log.Warn("skipping a duplicated or reordered command", "index", e.Index, "member", m, "seq", c.Origin.Seq, "applied_seq", hw)
				out = append(out, delivery{c.Origin, applyResult{Zxid: e.Index, Refused: errStaleOrigin, staleHW: hw}})
				continue
			}
			sm.origins[m] = c.Origin.Seq
		}
		r, err := sm.applyCommand(e.Index, &c, &sevs)
		sm.publish()
		if err != nil {
			sm.applied.Store(e.Index - 1)
			sm.mu.Unlock()
			sm.deliver(out, sevs)
			return err
		}
		out = append(out, delivery{c.Origin, r})
	}
	sm.applied.Store(entries[len(entries)-1].Index)
	sm.mu.Unlock()
	sm.deliver(out, sevs)
	return nil
}

// delivery is the result of one applied command for its waiter.
type delivery struct {
	o origin
	r applyResult
}

// deliver hands results to their waiters and wakes waitApplied; called
// after mu is released.
func (sm *stateMachine) deliver(out []delivery, sevs []sessionEvent) {
	if len(sevs) > 0 {
		sm.onSessions(sevs)
	}
	for _, d := range out {
		if d.r.staleHW != 0 {
			sm.onStale(d.o.Member, d.r.staleHW)
		}
		sm.waits.trigger(d.o, d.r)
	}
	sm.appliedMu.Lock()
	close(sm.appliedCh)
	sm.appliedCh = make(chan struct{})
	sm.appliedMu.Unlock()
}

// applyCommand applies one decoded command at zxid index and appends the
// session changes it made to sevs. Called with mu held. An error is fatal
// (a cluster version this member cannot run).
func (sm *stateMachine) applyCommand(index uint64, c *command, sevs *[]sessionEvent) (applyResult, error) {
	now := max(applyTime(c.TimeMs), sm.lastTime)
	sm.lastTime = now
	r := applyResult{Zxid: index}
	if c.Type.minClusterVersion() > sm.clusterVersion.Load() {
		// A proposer broke the gate; every member refuses it alike.
		r.Err = errVersionGate
		return r, nil
	}
	switch c.Type {
	case cmdCreateSession:
		id := sessionID(index)
		err := sm.sessions.Create(session.Session{
			ID: id, TimeoutMs: c.TimeoutMs, SecretHash: c.SecretHash, CreatedMs: now,
		})
		if err != nil {
			r.Err = err
			return r, nil
		}
		r.Session = id
		*sevs = append(*sevs, sessionEvent{Kind: sessionCreated, ID: id, TimeoutMs: c.TimeoutMs})
	case cmdCloseSession:
		if !sm.endSession(index, now, c.Session, false) {
			r.Err = errSessionExpired
			return r, nil
		}
		*sevs = append(*sevs, sessionEvent{Kind: sessionClosed, ID: c.Session})
	case cmdExpireSessions:
		for _, id := range c.Sessions {
			if sm.endSession(index, now, id, true) {
				*sevs = append(*sevs, sessionEvent{Kind: sessionExpired, ID: id})
			}
		}
	case cmdSessionMoved:
		if _, ok := sm.sessions.Get(c.Session); !ok {
			r.Err = errSessionExpired
			return r, nil
		}
		*sevs = append(*sevs, sessionEvent{Kind: sessionMoved, ID: c.Session, MovedTo: c.MovedTo, MovedConn: c.MovedConn})
	case cmdTreeOps:
		if c.Session != 0 {
			if _, ok := sm.sessions.Get(c.Session); !ok {
				r.Err = errSessionExpired
				return r, nil
			}
		}
		var evs []tree.Event
		if c.Multi {
			r.Results, evs, r.Err = sm.tree.Multi(index, now, c.Ops)
		} else if len(c.Ops) == 1 {
			var res tree.Result
			res, evs, r.Err = sm.tree.Apply(index, now, c.Ops[0])
			r.Results = []tree.Result{res}
		}
		sm.note(evs)
	case cmdMemberAttrs:
		r.Err = sm.applyMemberAttrs(index, now, c.Member)
	case cmdSetClusterVersion:
		if c.Version > sm.supported {
			return r, fmt.Errorf("%w: entry %d raises the cluster version to %d; this member runs up to %d: upgrade it",
				errUndecodable, index, c.Version, sm.supported)
		}
		if c.Version > sm.clusterVersion.Load() {
			sm.clusterVersion.Store(c.Version)
			sm.log.Info("cluster version raised", "version", c.Version, "zxid", index)
		}
	case cmdReap:
		r.Reaped = sm.applyReap(index, now, c.Reap)
	case cmdLock:
		r = sm.applyLock(index, now, c)
	case cmdUnlock:
		r = sm.applyUnlock(index, now, c)
	}
	sm.grantAfterDeletes(index, now)
	return r, nil
}

// endSession deletes a session and everything it owns, in this one step:
// its ephemeral nodes, and so the lock and election nodes it holds or waits
// with (they are ephemerals too). This is the one place a session ends,
// whether by close or expiry. It reports whether the session existed.
// Called with mu held.
func (sm *stateMachine) endSession(index uint64, now int64, id uint64, expiry bool) bool {
	if _, ok := sm.sessions.Get(id); !ok {
		return false
	}
	if !expiry || !bugExpireKeeps {
		sm.closeEphemerals(index, now, id)
	}
	sm.sessions.Close(id)
	return true
}

// applyReap deletes the nodes the leader found to have outlived their
// purpose, each only if it is still the node the leader saw and still
// qualifies; it returns how many it deleted. Called with mu held.
func (sm *stateMachine) applyReap(index uint64, now int64, nodes []reapNode) int {
	n := 0
	for _, rn := range nodes {
		st, ok := sm.tree.Exists(rn.Path)
		if !ok || st.Czxid != rn.Czxid || st.NumChildren != 0 {
			continue
		}
		container, ttl, _ := sm.tree.Flags(rn.Path)
		switch rn.Kind {
		case reapContainer:
			if !container || st.Cversion == 0 {
				continue
			}
		case reapTTL:
			if ttl == 0 || st.Mzxid != rn.Mzxid || now-st.Mtime < ttl {
				continue
			}
		}
		if _, evs, err := sm.tree.Apply(index, now, tree.Op{Kind: tree.OpDelete, Path: rn.Path, Version: -1, System: true}); err == nil {
			sm.note(evs)
			n++
		}
	}
	return n
}

// applyMemberAttrs writes /arbor/members/NAME, creating the parent if needed.
func (sm *stateMachine) applyMemberAttrs(index uint64, now int64, m memberAttrs) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	p := membersPath + "/" + m.Name
	if err := tree.ValidatePath(p, 0); err != nil {
		return err
	}
	ops := []tree.Op{{Kind: tree.OpSet, Path: p, Data: data, Version: -1, System: true}}
	if _, ok := sm.tree.Exists(p); !ok {
		ops[0].Kind = tree.OpCreate
		if _, ok := sm.tree.Exists(membersPath); !ok {
			ops = append([]tree.Op{{Kind: tree.OpCreate, Path: membersPath, Version: -1, System: true}}, ops...)
		}
	}
	_, evs, err := sm.tree.Multi(index, now, ops)
	sm.note(evs)
	return err
}

// note collects the tree events of the command being applied. Called with
// mu held.
func (sm *stateMachine) note(evs []tree.Event) { sm.cmdEvents = append(sm.cmdEvents, evs...) }

// publish records the events of the command just applied in the history,
// matches them to watches and queues what fired on the watching
// connections, without blocking (a connection whose queue is full is
// closed instead). Called with mu held, so that no read can observe the
// change before its events are queued.
func (sm *stateMachine) publish() {
	evs := sm.cmdEvents
	if len(evs) == 0 {
		return
	}
	if err := sm.history.Record(evs); err != nil {
		// Cannot happen (zxids only grow); if it did, resumes must resync
		// rather than miss a change.
		sm.log.Error("watch history refused events; resetting it", "err", err)
		sm.history.Reset(evs[len(evs)-1].Zxid)
	}
	sm.fired = sm.watches.Match(evs, sm.fired[:0])
	queueFired(sm.fired)
	// After the watch events of the same zxid: a grant observes the
	// release that made it.
	sm.settleWaiters(evs)
	clear(sm.fired) // do not pin connections or data until the next command
	clear(sm.cmdEvents)
	sm.cmdEvents = sm.cmdEvents[:0]
}

// appliedIndex is the index of the last applied entry (the zxid of reads).
func (sm *stateMachine) appliedIndex() uint64 { return sm.applied.Load() }

// waitApplied blocks until the applied index is at least index or done is
// closed; it reports whether the index was reached.
func (sm *stateMachine) waitApplied(done <-chan struct{}, index uint64) bool {
	for {
		sm.appliedMu.Lock()
		ch := sm.appliedCh
		sm.appliedMu.Unlock()
		if sm.applied.Load() >= index {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return sm.applied.Load() >= index
		}
	}
}
