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
)

// errSessionExpired is the apply result of a command whose session does not
// exist (expired, closed or never created) at its zxid.
var errSessionExpired = errors.New("server: session expired or unknown")

// errUndecodable ends the member: a committed command it cannot decode.
var errUndecodable = errors.New("server: cannot apply a committed command")

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

	applied atomic.Uint64

	// appliedMu guards appliedCh, which is closed and replaced after every
	// batch so that waitApplied can block without polling.
	appliedMu sync.Mutex
	appliedCh chan struct{}
}

var _ raftnode.StateMachine = (*stateMachine)(nil)

func newStateMachine(log *slog.Logger, waits *waitRegistry) *stateMachine {
	return &stateMachine{
		log:       log,
		waits:     waits,
		tree:      tree.New(),
		sessions:  session.NewTable(),
		origins:   make(map[uint64]uint64),
		onStale:   func(uint64, uint64) {},
		appliedCh: make(chan struct{}),
	}
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
	sm.mu.Lock()
	for _, e := range entries {
		if e.Data == nil {
			continue
		}
		c, err := decodeCommand(e.Data)
		if err != nil {
			sm.applied.Store(e.Index - 1)
			sm.mu.Unlock()
			sm.deliver(out)
			return fmt.Errorf("%w: committed entry %d (term %d): %w", errUndecodable, e.Index, e.Term, err)
		}
		if m := c.Origin.Member; m != 0 {
			if hw := sm.origins[m]; c.Origin.Seq <= hw {
				sm.log.Warn("skipping a duplicated or reordered command", "index", e.Index, "member", m, "seq", c.Origin.Seq, "applied_seq", hw)
				out = append(out, delivery{c.Origin, applyResult{Zxid: e.Index, Refused: errStaleOrigin, staleHW: hw}})
				continue
			}
			sm.origins[m] = c.Origin.Seq
		}
		r := sm.applyCommand(e.Index, &c)
		out = append(out, delivery{c.Origin, r})
	}
	sm.applied.Store(entries[len(entries)-1].Index)
	sm.mu.Unlock()
	sm.deliver(out)
	return nil
}

// delivery is the result of one applied command for its waiter.
type delivery struct {
	o origin
	r applyResult
}

// deliver hands results to their waiters and wakes waitApplied; called
// after mu is released.
func (sm *stateMachine) deliver(out []delivery) {
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

// applyCommand applies one decoded command at zxid index. Called with mu held.
func (sm *stateMachine) applyCommand(index uint64, c *command) applyResult {
	now := max(applyTime(c.TimeMs), sm.lastTime)
	sm.lastTime = now
	r := applyResult{Zxid: index}
	switch c.Type {
	case cmdCreateSession:
		id := sessionID(index)
		err := sm.sessions.Create(session.Session{
			ID: id, TimeoutMs: c.TimeoutMs, SecretHash: c.SecretHash, CreatedMs: now,
		})
		if err != nil {
			r.Err = err
			return r
		}
		r.Session = id
	case cmdCloseSession:
		if _, ok := sm.sessions.Get(c.Session); !ok {
			r.Err = errSessionExpired
			return r
		}
		// One step: the ephemerals go with the session.
		sm.closeEphemerals(index, now, c.Session)
		sm.sessions.Close(c.Session)
	case cmdTreeOps:
		if c.Session != 0 {
			if _, ok := sm.sessions.Get(c.Session); !ok {
				r.Err = errSessionExpired
				return r
			}
		}
		if c.Multi {
			r.Results, _, r.Err = sm.tree.Multi(index, now, c.Ops)
		} else if len(c.Ops) == 1 {
			res, _, err := sm.tree.Apply(index, now, c.Ops[0])
			r.Results, r.Err = []tree.Result{res}, err
		}
	case cmdMemberAttrs:
		r.Err = sm.applyMemberAttrs(index, now, c.Member)
	}
	return r
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
	_, _, err = sm.tree.Multi(index, now, ops)
	return err
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

// memberAttrsOf returns the published attributes of every member, by name.
// Called with mu held for reading.
func (sm *stateMachine) memberAttrsLocked() map[string]memberAttrs {
	names, _, err := sm.tree.Children(membersPath)
	if err != nil {
		return nil
	}
	out := make(map[string]memberAttrs, len(names))
	for _, n := range names {
		data, _, err := sm.tree.Get(membersPath + "/" + n)
		if err != nil {
			continue
		}
		var m memberAttrs
		if json.Unmarshal(data, &m) == nil {
			out[n] = m
		}
	}
	return out
}

func (sm *stateMachine) numNodes() int {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	return sm.tree.NumNodes()
}

func (sm *stateMachine) numSessions() int {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	return sm.sessions.Len()
}
