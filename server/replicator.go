package server

import (
	"context"

	"github.com/arbor-db/arbor/raftnode"
)

// replicator is what the server uses of raftnode.Node. Tests substitute a
// fake that applies commands at once.
type replicator interface {
	Run(ctx context.Context) error
	Propose(ctx context.Context, cmd []byte) error
	// ProposeAsync lets one connection keep many writes in flight within
	// one fsync; done reports raft refusing the command.
	ProposeAsync(ctx context.Context, cmd []byte, done func(error)) error
	// ProposeAsLeader is ProposeAsync for a decision of the leader of
	// term: raft takes it only while this member leads in term.
	ProposeAsLeader(ctx context.Context, term uint64, cmd []byte, done func(error)) error
	LinearizableRead(ctx context.Context) error
	Status() raftnode.Status
	Members() []raftnode.MemberInfo
	Ready() bool
	TransferLeadership(ctx context.Context) error
}
