package raftnode

import "go.etcd.io/raft/v3"

// publish makes the raft goroutine's view visible to Status and Ready.
func (n *Node) publish() {
	bs := n.raw.BasicStatus()
	n.term.Store(bs.Term)
	n.commit.Store(bs.Commit)
	n.appliedPub.Store(n.applied)
	n.lead.Store(bs.Lead)
	if bs.Lead != n.lastLead {
		if bs.Lead != raft.None {
			n.leaderChanges.Add(1)
			n.cfg.Metrics.incLeaderChanges()
			n.log.Info("leader changed", "leader", bs.Lead, "term", bs.Term)
		}
		n.lastLead = bs.Lead
	}
}

// Status is a point-in-time view for health checks and metrics.
func (n *Node) Status() Status {
	lead := n.lead.Load()
	return Status{
		ID:               n.id,
		Leader:           lead,
		Term:             n.term.Load(),
		Commit:           n.commit.Load(),
		Applied:          n.appliedPub.Load(),
		IsLeader:         lead == n.id,
		LeaderChanges:    n.leaderChanges.Load(),
		PendingProposals: int(n.pending.Load()),
		SnapshotIndex:    n.snapIndexPub.Load(),
		LogCacheBytes:    n.store.cachePub.Load(),
	}
}

// Ready reports whether a leader is known and everything committed that
// this member knows of is applied.
func (n *Node) Ready() bool {
	return n.lead.Load() != raft.None && n.appliedPub.Load() >= n.commit.Load()
}

// ID is this member's raft id.
func (n *Node) ID() uint64 { return n.id }
