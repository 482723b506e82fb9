package raftnode

import "errors"

// Errors beyond the contract's ErrStopped, ErrProposalDropped, ErrNoLeader.
var (
	ErrStorage             = errors.New("raftnode: storage failure")
	ErrCorrupt             = errors.New("raftnode: corrupt data")
	ErrNoSnapshot          = errors.New("raftnode: no usable snapshot")
	ErrMemberChangePending = errors.New("raftnode: another membership change is pending")
	ErrMemberExists        = errors.New("raftnode: member already exists")
	ErrMemberNotFound      = errors.New("raftnode: member not found")
	ErrMemberIDReused      = errors.New("raftnode: member id was removed before and cannot be reused")
	ErrNotLearner          = errors.New("raftnode: member is not a learner")
	ErrLastVoter           = errors.New("raftnode: cannot remove the last voter")
	ErrRemoved             = errors.New("raftnode: this member was removed from the cluster")
	ErrRaftPanic           = errors.New("raftnode: raft invariant violated")
	ErrAlreadyRunning      = errors.New("raftnode: Run already called")
	ErrBadConfig           = errors.New("raftnode: bad config")
	// ErrNotLeaderInTerm: a ProposeAsLeader whose member no longer led in
	// the term it named when raft would have stepped it.
	ErrNotLeaderInTerm = errors.New("raftnode: not the leader in the proposal's term")
)
