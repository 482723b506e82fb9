// Package client is the Go client of Arbor. It speaks the WebSocket protocol
// of docs/protocol.md (package client/wire) to any member of a cluster.
//
// Dial connects to the first endpoint that answers and opens a session. A
// Client is safe for concurrent use: every call is pipelined on the one
// connection, with requests written by one writer goroutine and responses
// matched to callers by request id by one reader goroutine. A third goroutine
// pings the member when the connection has been idle for a third of the
// session timeout. Close ends the session (the cluster deletes its ephemeral
// nodes) and stops all three.
//
// Errors from the cluster are *Error values carrying the protocol's code;
// match them with errors.Is against the sentinels (ErrNoNode, ...). A write
// that fails with TIMEOUT, UNAVAILABLE or a lost connection may or may not
// have been applied: IsIndeterminate reports that case.
//
// When the connection is lost the Client fails every request in flight with
// ErrConnectionLost and stays broken; resuming the session on another member
// is not implemented yet (the endpoints, session id, secret and last zxid are
// kept for it).
package client
