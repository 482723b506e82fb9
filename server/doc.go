// Package server wires Arbor together: the replicated state machine (command
// encoding and apply over the tree and the session table), the WebSocket
// endpoint of PROTOCOL.md with per-connection FIFO ordering, the HTTP
// health, readiness and metrics endpoints, and Run, which owns every
// goroutine of a member.
//
// Request path: a connection's reader goroutine decodes and validates each
// request and appends a pending response to the connection's bounded queue.
// Writes are encoded as commands and proposed to raft at once; their result
// comes back through the wait registry when the entry is applied.
// Linearizable reads join the server-wide read barrier, which batches them
// into one ReadIndex round. The writer goroutine pops the queue in order,
// waits for each item, evaluates reads only when they reach the head (so a
// read sees every earlier write of the same connection) and writes the
// responses.
//
// HTTP endpoints on the client port, beside the WebSocket endpoint /v1:
// /healthz (200 while the process is up); /readyz (200 once the member has
// a leader, has applied its commit index and has applied its own
// /arbor/members record, 503 with the reason before); /metrics (Prometheus
// exposition from a per-server client_golang registry: the arbor_* metrics,
// go_* and process_*); /debug/state (JSON: member, applied index, SHA-256 of
// the state machine snapshot at that index, node and session counts; see
// serveDebugState).
//
// Determinism: apply never reads a clock or randomness. The proposer stamps
// the time into the command; apply uses max(command time, last applied
// time). Session ids are a bijective mix of the entry index; the proposer
// draws the session secret and sends only its SHA-256.
package server
