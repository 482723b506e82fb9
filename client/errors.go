package client

import (
	"errors"

	"github.com/arbor-db/arbor/client/wire"
)

// Client-side codes: conditions the client detects itself. They never cross
// the wire.
const (
	// CodeConnectionLost: the connection broke before the answer arrived.
	CodeConnectionLost wire.Code = "CONNECTION_LOST"
	// CodeClosed: the Client was closed.
	CodeClosed wire.Code = "CLOSED"
	// CodeCanceled: the caller's context was canceled while waiting.
	CodeCanceled wire.Code = "CANCELED"
)

// Error is a failed request. Code is a protocol error code (or one of the
// client-side codes above); Index is the failing sub-op of a multi and -1
// otherwise.
//
// Indeterminate is set when the request was a write (create, set, delete,
// multi, lock, unlock, elect, resign, close) whose outcome is unknown: it
// failed with TIMEOUT or UNAVAILABLE, the connection was lost after it was
// written, or the caller stopped waiting after it was sent. Such a write may
// or may not have been applied; read the state back before retrying a
// non-idempotent write. Reads in flight when a connection breaks are sent
// again on the next one instead, and a write that never reached the
// connection is sent there as if nothing happened.
type Error struct {
	Code          wire.Code
	Message       string
	Index         int
	Indeterminate bool

	cause error // for Unwrap: a context error or a transport error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is matches errors by code, so errors.Is(err, ErrNoNode) holds for every
// NO_NODE error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap returns the underlying cause (a context or transport error), if any.
func (e *Error) Unwrap() error { return e.cause }

// IsIndeterminate reports whether err is a write whose outcome is unknown: it
// may or may not have been applied.
func IsIndeterminate(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Indeterminate
}

func sentinel(c wire.Code, msg string) *Error {
	return &Error{Code: c, Message: msg, Index: -1}
}

// Sentinels, one per code; compare with errors.Is.
var (
	ErrBadRequest              = sentinel(wire.CodeBadRequest, "bad request")
	ErrUnknownOp               = sentinel(wire.CodeUnknownOp, "unknown op")
	ErrBadPath                 = sentinel(wire.CodeBadPath, "bad path")
	ErrNoNode                  = sentinel(wire.CodeNoNode, "node does not exist")
	ErrNodeExists              = sentinel(wire.CodeNodeExists, "node already exists")
	ErrNotEmpty                = sentinel(wire.CodeNotEmpty, "node has children")
	ErrBadVersion              = sentinel(wire.CodeBadVersion, "version does not match")
	ErrNoChildrenForEphemerals = sentinel(wire.CodeNoChildrenForEphemeral, "ephemeral nodes cannot have children")
	ErrTooLarge                = sentinel(wire.CodeTooLarge, "too large")
	ErrReadOnly                = sentinel(wire.CodeReadOnly, "path is read-only")
	ErrNoSession               = sentinel(wire.CodeNoSession, "no session")
	ErrSessionExpired          = sentinel(wire.CodeSessionExpired, "session expired")
	ErrAuthFailed              = sentinel(wire.CodeAuthFailed, "authentication failed")
	ErrNoAuth                  = sentinel(wire.CodeNoAuth, "not authorized")
	ErrNotHeld                 = sentinel(wire.CodeNotHeld, "not held")
	ErrTimeout                 = sentinel(wire.CodeTimeout, "timed out")
	ErrUnavailable             = sentinel(wire.CodeUnavailable, "unavailable")
	ErrInternal                = sentinel(wire.CodeInternal, "internal error")
	ErrConnectionLost          = sentinel(CodeConnectionLost, "connection lost")
	ErrClosed                  = sentinel(CodeClosed, "client closed")
	ErrCanceled                = sentinel(CodeCanceled, "canceled")
)

// ErrJeopardy is the cause (context.Cause) of a cancelled Client.Context
// when the session deadline passed: the cluster may have expired the
// session. It is never returned by a call.
var ErrJeopardy = errors.New("arbor: session deadline passed; the session may have expired")

// writeOps are the ops whose outcome is unknown when their answer is lost.
var writeOps = map[string]bool{
	wire.OpCreate: true, wire.OpSet: true, wire.OpDelete: true, wire.OpMulti: true,
	wire.OpLock: true, wire.OpUnlock: true, wire.OpElect: true, wire.OpResign: true,
	wire.OpClose: true,
}

// fromWire converts a failed response into an *Error.
func fromWire(op string, r *wire.Response) *Error {
	e := &Error{Code: wire.CodeInternal, Message: "failed response without an error", Index: -1}
	if r.Error != nil {
		e.Code, e.Message = r.Error.Code, r.Error.Message
	}
	if r.Index != nil {
		e.Index = *r.Index
	}
	if writeOps[op] && (e.Code == wire.CodeTimeout || e.Code == wire.CodeUnavailable) {
		e.Indeterminate = true
	}
	return e
}
