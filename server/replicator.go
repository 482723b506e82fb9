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
	LinearizableRead(ctx context.Context) error
	Status() raftnode.Status
	Members() []raftnode.MemberInfo
	Ready() bool
	TransferLeadership(ctx context.Context) error
}
