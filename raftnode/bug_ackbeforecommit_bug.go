//go:build bug_ackbeforecommit

package raftnode

import (
	"go.etcd.io/raft/v3"
)

// toApply is a negative control for the fault suite
// (.ci/negative-controls.sh): a leader applies its new entries as soon as
// they are in its own log, before a quorum has them, so the member that
// proposed a write answers it before it is committed.
func (n *Node) toApply(rd raft.Ready) []logEntry {
	out := rd.CommittedEntries
	if n.raw.BasicStatus().RaftState != raft.StateLeader {
		return out
	}
	next := n.applied + 1
	if k := len(out); k > 0 {
		next = max(next, out[k-1].Index+1)
	}
	out = append([]logEntry(nil), out...)
	for _, e := range rd.Entries {
		if e.Index < next {
			continue
		}
		if e.Index != next || !isNormalEntry(e) {
			break
		}
		out = append(out, e)
		next++
	}
	return out
}
