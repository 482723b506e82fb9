//go:build !bug_ackbeforecommit

package raftnode

import (
	"go.etcd.io/raft/v3"
)

// toApply returns the entries of rd to apply: the committed ones only. See
// bug_ackbeforecommit_bug.go.
func (n *Node) toApply(rd raft.Ready) []logEntry { return rd.CommittedEntries }
