package raftnode

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"go.etcd.io/raft/v3"
)

// handleReady processes one Ready in the documented order.
func (n *Node) handleReady() error {
	rd := n.raw.Ready()
	if rd.SoftState != nil {
		n.raftState = rd.SoftState.RaftState
	}
	// A leader may send before its own write is durable (raft thesis
	// 10.2.1; the raft package docs): followers persist in parallel with
	// it, and an entry is still applied, and so acknowledged, only from a
	// later Ready, after this one's write. Followers and candidates must
	// persist first: their messages (acks, votes) promise durable state.
	sentEarly := n.raftState == raft.StateLeader
	if sentEarly {
		n.tr.Send(rd.Messages)
	}
	// The snapshot file is already durable (ReceiveSnapshot fsyncs it
	// before stepping the MsgSnap); its metadata goes in the same
	// transaction as the entries that follow it.
	snapMeta := readySnapshot(rd)
	// A leader applies the committed entries it had made durable before
	// this Ready (and answers their writes) before this Ready's own write:
	// under load every Ready brings new entries, and waiting for their
	// fdatasync would add one to the latency of every write. Committed
	// entries are never truncated, so what is on disk is final. A follower
	// writes first: its acknowledgements, which commit the next writes,
	// wait for the write and not for the apply.
	ents := n.toApply(rd)
	if sentEarly && snapMeta == nil {
		k := 0
		for k < len(ents) && ents[k].Index <= n.store.last {
			k++
		}
		if err := n.apply(ents[:k]); err != nil {
			return err
		}
		ents = ents[k:]
	}
	if err := n.disk.save(rd.HardState, rd.Entries, snapMeta); err != nil {
		return err
	}
	if snapMeta != nil {
		if err := n.store.applySnapshot(*snapMeta); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("%w: apply snapshot: %w", ErrStorage, err)
		}
		n.bytesSinceSnap = 0
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		n.store.setHardState(rd.HardState)
	}
	if err := n.store.append(rd.Entries); err != nil {
		return err
	}
	// Everything this Ready asks to persist is durable: safe to send.
	if !sentEarly {
		n.tr.Send(rd.Messages)
	}
	if snapMeta != nil {
		if err := n.restoreSnapshot(*snapMeta); err != nil {
			return err
		}
	}
	if err := n.apply(ents); err != nil {
		return err
	}
	n.onReadStates(rd.ReadStates)
	n.raw.Advance(rd)
	n.publish()
	n.releaseReads()
	return n.maybeSnapshot()
}

// restoreSnapshot replaces the state machine with a snapshot received from
// the leader.
func (n *Node) restoreSnapshot(meta snapshotMeta) error {
	path := filepath.Join(n.snapDir, snapFileName(meta.Term, meta.Index))
	hdr, rc, err := openSnapshotPayload(path)
	if err != nil {
		return fmt.Errorf("%w: load received snapshot: %w", ErrStorage, err)
	}
	err = n.sm.Restore(meta.Index, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("restore snapshot %d: %w", meta.Index, err)
	}
	n.applied, n.snapIndex = meta.Index, meta.Index
	n.snapIndexPub.Store(meta.Index)
	n.confState = meta.ConfState
	n.mu.Lock()
	old := n.members
	n.members = map[uint64]memberMeta{}
	for _, m := range hdr.members {
		n.members[m.ID] = m
	}
	n.mu.Unlock()
	for _, m := range hdr.members {
		if err := n.disk.putMember(m); err != nil {
			return err
		}
		if m.ID != n.id {
			if m.Removed {
				n.tr.RemovePeer(m.ID)
			} else {
				n.tr.AddPeer(m.ID, m.PeerURL)
			}
		}
	}
	for id := range old {
		if _, ok := n.members[id]; !ok && id != n.id {
			n.tr.RemovePeer(id)
		}
	}
	n.setConfView()
	n.log.Info("installed snapshot from leader", "index", meta.Index, "term", meta.Term)
	if err := purgeSnapshots(n.snapDir, snapshotsKept); err != nil {
		return fmt.Errorf("%w: purge snapshots: %w", ErrStorage, err)
	}
	return nil
}

// apply hands committed entries to the state machine in one call, applying
// conf changes to raft on the way.
func (n *Node) apply(ents []logEntry) error {
	for len(ents) > 0 && ents[0].Index <= n.applied {
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return nil
	}
	if ents[0].Index != n.applied+1 {
		return fmt.Errorf("%w: applied %d but next committed entry is %d", ErrCorrupt, n.applied, ents[0].Index)
	}
	var nonces []uint64
	for _, e := range ents {
		if !isConfChange(e) {
			continue
		}
		nonce, err := n.applyConfChange(e)
		if err != nil {
			return err
		}
		if nonce != 0 {
			nonces = append(nonces, nonce)
		}
	}
	if err := n.sm.Apply(toEntries(ents)); err != nil {
		return fmt.Errorf("raftnode: apply entries %d..%d: %w", ents[0].Index, ents[len(ents)-1].Index, err)
	}
	n.applied = ents[len(ents)-1].Index
	for i := range ents {
		n.bytesSinceSnap += uint64(ents[i].Size())
	}
	n.mu.Lock()
	for _, nonce := range nonces {
		if w, ok := n.confWaiters[nonce]; ok {
			w <- nil
			delete(n.confWaiters, nonce)
		}
	}
	n.mu.Unlock()
	return nil
}

func (n *Node) applyConfChange(e logEntry) (uint64, error) {
	cc, ops, err := decodeConfChange(e)
	if err != nil {
		return 0, err
	}
	n.confState = *n.raw.ApplyConfChange(cc)
	var nonce uint64
	for _, op := range ops {
		nonce = op.ctx.Nonce
		n.mu.Lock()
		m, ok := n.members[op.nodeID]
		n.mu.Unlock()
		if !ok {
			m = memberMeta{ID: op.nodeID}
		}
		switch op.typ {
		case ccAddNode, ccAddLearner, ccUpdateNode:
			// A new member refuses a snapshot whose ConfState lacks it, so
			// the next snapshot must postdate this change.
			n.forceSnapshot = true
			if n.store.snap.Index != 0 {
				n.store.staleBefore = e.Index
			}
			if op.ctx.Name != "" {
				m.Name = op.ctx.Name
			}
			if op.ctx.PeerURL != "" {
				m.PeerURL = op.ctx.PeerURL
			}
			m.Removed = false
			if op.nodeID != n.id {
				n.tr.AddPeer(op.nodeID, m.PeerURL)
			}
		case ccRemoveNode:
			m.Removed = true
			if op.nodeID == n.id {
				n.removed = true
			} else {
				n.tr.RemovePeer(op.nodeID)
			}
		}
		if err := n.disk.putMember(m); err != nil {
			return 0, err
		}
		n.mu.Lock()
		n.members[m.ID] = m
		n.mu.Unlock()
		n.log.Info("applied membership change", "index", e.Index, "change", op.typ.String(), "id", op.nodeID, "name", m.Name)
	}
	n.setConfView()
	return nonce, nil
}

// setConfView publishes the current ConfState for Members.
func (n *Node) setConfView() {
	n.mu.Lock()
	n.voters = slices.Clone(n.confState.Voters)
	n.learners = slices.Clone(n.confState.Learners)
	n.mu.Unlock()
}

func (n *Node) memberList() []memberMeta {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]memberMeta, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b memberMeta) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
