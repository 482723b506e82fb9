package raftnode

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
)

// Members lists voters and learners with their metadata.
func (n *Node) Members() []MemberInfo {
	lead := n.lead.Load()
	n.mu.Lock()
	var out []MemberInfo
	add := func(id uint64, learner bool) {
		m := n.members[id]
		out = append(out, MemberInfo{ID: id, Name: m.Name, PeerURL: m.PeerURL, Learner: learner, Leader: id == lead})
	}
	for _, id := range n.voters {
		add(id, false)
	}
	for _, id := range n.learners {
		add(id, true)
	}
	n.mu.Unlock()
	for i := range out {
		out[i].Alive = out[i].ID == n.id || n.tr.Alive(out[i].ID)
	}
	return out
}

// AddMember adds a member (as a learner when learner is true) with the id
// its name gives, and returns once the change is applied on this member.
func (n *Node) AddMember(ctx context.Context, name, peerURL string, learner bool) error {
	return n.AddMemberID(ctx, MemberID(name), name, peerURL, learner)
}

// AddMemberID adds a member under id (a joiner with an id of its own
// incarnation: Config.FreshID). A name in use by a member is refused
// (ErrMemberExists), as is an id that was removed (ErrMemberIDReused).
func (n *Node) AddMemberID(ctx context.Context, id uint64, name, peerURL string, learner bool) error {
	typ := ccAddNode
	if learner {
		typ = ccAddLearner
	}
	return n.changeMembership(ctx, typ, id, ccContext{Name: name, PeerURL: peerURL}, func() error {
		if slices.Contains(n.confState.Voters, id) || slices.Contains(n.confState.Learners, id) {
			return ErrMemberExists
		}
		if m, ok := n.members[id]; ok && m.Removed {
			return ErrMemberIDReused
		}
		for other, m := range n.members {
			if m.Name == name && !m.Removed && (slices.Contains(n.confState.Voters, other) || slices.Contains(n.confState.Learners, other)) {
				return ErrMemberExists
			}
		}
		return nil
	})
}

// idOf returns the id of the current member called name, or the id the
// name gives when no member has it.
func (n *Node) idOf(name string) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, m := range n.members {
		if m.Name == name && !m.Removed && (slices.Contains(n.voters, id) || slices.Contains(n.learners, id)) {
			return id
		}
	}
	return MemberID(name)
}

// PromoteMember turns a learner into a voter.
func (n *Node) PromoteMember(ctx context.Context, name string) error {
	id := n.idOf(name)
	return n.changeMembership(ctx, ccAddNode, id, ccContext{Name: name}, func() error {
		if slices.Contains(n.confState.Learners, id) {
			return nil
		}
		if slices.Contains(n.confState.Voters, id) {
			return ErrNotLearner
		}
		return ErrMemberNotFound
	})
}

// RemoveMember removes a member. Removing this member while it leads
// transfers leadership first. The removed member's Run returns ErrRemoved
// once it applies its removal.
func (n *Node) RemoveMember(ctx context.Context, name string) error {
	id := n.idOf(name)
	if id == n.id && n.lead.Load() == n.id {
		if err := n.TransferLeadership(ctx); err != nil {
			return err
		}
	}
	err := n.changeMembership(ctx, ccRemoveNode, id, ccContext{Name: name}, func() error {
		if slices.Contains(n.confState.Learners, id) {
			return nil
		}
		if !slices.Contains(n.confState.Voters, id) {
			return ErrMemberNotFound
		}
		if len(n.confState.Voters) == 1 {
			return ErrLastVoter
		}
		return nil
	})
	if id == n.id && errors.Is(err, ErrStopped) && n.removed {
		return nil
	}
	return err
}

// changeMembership proposes change typ of member id (validated on the raft
// goroutine) and waits until it is applied here.
func (n *Node) changeMembership(ctx context.Context, typ confChangeType, id uint64, cctx ccContext, validate func() error) error {
	cctx.Nonce = n.nonce.Add(1)
	cc := newConfChange(typ, id, cctx)
	wait := make(chan error, 1)
	n.mu.Lock()
	n.confWaiters[cctx.Nonce] = wait
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.confWaiters, cctx.Nonce)
		n.mu.Unlock()
	}()
	var perr error
	if err := n.do(ctx, func() {
		if perr = validate(); perr != nil {
			return
		}
		if n.confChangePending() {
			perr = ErrMemberChangePending
			return
		}
		if perr = n.raw.ProposeConfChange(cc); errors.Is(perr, raft.ErrProposalDropped) {
			perr = ErrProposalDropped
		}
	}); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	select {
	case err := <-wait:
		return err
	case <-ctx.Done():
		return n.ctxErr(ctx)
	case <-n.done:
		select {
		case err := <-wait:
			return err
		default:
			return ErrStopped
		}
	}
}

// confChangePending reports whether raft would refuse a new conf change:
// one is in the unapplied log, or (on a leader) the leader has not yet
// applied an entry of its own term, since raft conservatively treats its
// whole log at election time as possibly holding one. Runs on the raft
// goroutine between Readys, when every entry is in raft's Storage; the
// unapplied log is read in batches, as it may be long (a replay at start).
func (n *Node) confChangePending() bool {
	last, _ := n.store.LastIndex()
	for lo := n.applied + 1; lo <= last; {
		ents, err := n.store.Entries(lo, last+1, maxSizePerMsg)
		if err != nil || len(ents) == 0 {
			return true
		}
		for _, e := range ents {
			if isConfChange(e) {
				return true
			}
		}
		lo = ents[len(ents)-1].Index + 1
	}
	bs := n.raw.BasicStatus()
	if bs.RaftState == raft.StateLeader {
		t, err := n.store.Term(n.applied)
		return err != nil || t != bs.Term
	}
	return false
}

// TransferLeadership hands leadership to the most up-to-date voter and
// waits until another member is known to lead, or ctx ends. A no-op unless
// this member leads and another voter exists.
func (n *Node) TransferLeadership(ctx context.Context) error {
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for first := true; ; first = false {
		var leader bool
		var target uint64
		if err := n.do(ctx, func() {
			st := n.raw.Status()
			if st.RaftState != raft.StateLeader {
				return
			}
			leader = true
			var best uint64
			for id, pr := range st.Progress {
				if id == n.id || pr.IsLearner {
					continue
				}
				if target == 0 || pr.Match > best {
					target, best = id, pr.Match
				}
			}
			if target != 0 {
				n.raw.TransferLeader(target)
			}
		}); err != nil {
			return err
		}
		if (leader && target == 0) || (!leader && first) {
			return nil
		}
		// Wait for the new leader to be known. Raft aborts a transfer
		// after an election timeout; then the loop retries it.
		deadline := time.Now().Add(time.Duration(2*n.cfg.ElectionTicks) * n.cfg.TickInterval)
		for {
			if l := n.lead.Load(); l != n.id && l != raft.None {
				return nil
			}
			if leader && time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-n.done:
				return ErrStopped
			case <-t.C:
			}
			if !leader && n.lead.Load() == n.id {
				break // became leader again meanwhile: transfer anew
			}
		}
	}
}

// Progress returns, on the leader, how far each member's log is known to
// match the leader's (raft's Match index), by member id; on any other
// member it returns nil. A learner is caught up when its Match is close to
// the leader's commit index.
func (n *Node) Progress(ctx context.Context) (map[uint64]uint64, error) {
	var out map[uint64]uint64
	err := n.do(ctx, func() {
		st := n.raw.Status()
		if st.RaftState != raft.StateLeader {
			return
		}
		out = make(map[uint64]uint64, len(st.Progress))
		for id, pr := range st.Progress {
			out[id] = pr.Match
		}
	})
	return out, err
}

// UpdateMemberPeer records a member's new peer address (it restarted
// elsewhere) and returns once the change is applied on this member.
func (n *Node) UpdateMemberPeer(ctx context.Context, id uint64, peerURL string) error {
	return n.changeMembership(ctx, ccUpdateNode, id, ccContext{PeerURL: peerURL}, func() error {
		if !slices.Contains(n.confState.Voters, id) && !slices.Contains(n.confState.Learners, id) {
			return ErrMemberNotFound
		}
		return nil
	})
}
