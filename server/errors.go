package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/session"
	"github.com/arbor-db/arbor/tree"
)

// errorf builds a wire error.
func errorf(code wire.Code, format string, args ...any) *wire.Error {
	return &wire.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// treeErrorCodes maps tree sentinels to wire codes.
var treeErrorCodes = []struct {
	err  error
	code wire.Code
}{
	{tree.ErrBadPath, wire.CodeBadPath},
	{tree.ErrNoNode, wire.CodeNoNode},
	{tree.ErrNodeExists, wire.CodeNodeExists},
	{tree.ErrNotEmpty, wire.CodeNotEmpty},
	{tree.ErrBadVersion, wire.CodeBadVersion},
	{tree.ErrNoChildrenForEphemerals, wire.CodeNoChildrenForEphemeral},
	{tree.ErrTooLarge, wire.CodeTooLarge},
	{tree.ErrReadOnly, wire.CodeReadOnly},
	{errSessionExpired, wire.CodeSessionExpired},
	{session.ErrNotFound, wire.CodeSessionExpired},
}

// toWireError turns an error of a tree op on path (or of the replication
// around it) into a wire error with a human message; the Go error text never
// crosses the wire as is.
func toWireError(err error, kind tree.OpKind, path string) *wire.Error {
	code := wire.CodeInternal
	for _, m := range treeErrorCodes {
		if errors.Is(err, m.err) {
			code = m.code
			break
		}
	}
	switch code {
	case wire.CodeBadPath:
		return errorf(code, "%s", strings.TrimPrefix(err.Error(), tree.ErrBadPath.Error()+": "))
	case wire.CodeNoNode:
		if kind == tree.OpCreate {
			return errorf(code, "the parent of %s does not exist", path)
		}
		return errorf(code, "%s does not exist", path)
	case wire.CodeNodeExists:
		return errorf(code, "%s already exists", path)
	case wire.CodeNotEmpty:
		return errorf(code, "%s has children", path)
	case wire.CodeBadVersion:
		// The tree's text names the version found and the one expected
		// ("/a is at version 2, not 1"): that is what a caller needs to
		// decide whether to read again and retry.
		if why, ok := strings.CutPrefix(err.Error(), tree.ErrBadVersion.Error()+": "); ok {
			return errorf(code, "%s", why)
		}
		return errorf(code, "%s is not at the expected version", path)
	case wire.CodeNoChildrenForEphemeral:
		return errorf(code, "the parent of %s is ephemeral and cannot have children", path)
	case wire.CodeTooLarge:
		return errorf(code, "%s: data is too large", path)
	case wire.CodeReadOnly:
		return errorf(code, "%s is reserved for the server", path)
	case wire.CodeSessionExpired:
		return errorf(code, "the session has expired or is unknown")
	}
	return replicationError(err)
}

// replicationError maps a failure to propose or wait to a wire error.
func replicationError(err error) *wire.Error {
	// No leader first: raftnode wraps ErrNoLeader around the deadline when
	// a request ran out of time without one, and PROTOCOL.md calls that
	// UNAVAILABLE (no quorum or no leader in time), not TIMEOUT.
	switch {
	case errors.Is(err, errVersionGate), errors.Is(err, errLimit):
		return errorf(wire.CodeUnavailable, "%s", strings.TrimPrefix(err.Error(), "server: "))
	case errors.Is(err, errStaleOrigin):
		return errorf(wire.CodeUnavailable, "the write reached the log out of order and was not applied; retry it")
	case errors.Is(err, errLeaderChanged):
		return errorf(wire.CodeUnavailable, "the leader changed while the write was in flight; it may or may not have been applied")
	case errors.Is(err, raftnode.ErrProposalDropped), errors.Is(err, raftnode.ErrNoLeader):
		return errorf(wire.CodeUnavailable, "no leader: the cluster has no quorum right now")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(wire.CodeTimeout, "the request timed out; a write may or may not have been applied")
	case errors.Is(err, raftnode.ErrStopped), errors.Is(err, errShuttingDown), errors.Is(err, context.Canceled):
		return errorf(wire.CodeUnavailable, "the member is shutting down")
	}
	return errorf(wire.CodeInternal, "internal error: %v", err)
}

// timedOut is the error of a request that reached its deadline: UNAVAILABLE
// when this member knows no leader, else TIMEOUT.
func (s *server) timedOut() *wire.Error {
	if s.rep.Status().Leader == 0 {
		return replicationError(fmt.Errorf("%w: %w", raftnode.ErrNoLeader, context.DeadlineExceeded))
	}
	return replicationError(context.DeadlineExceeded)
}
