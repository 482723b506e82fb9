// Package session holds Arbor's replicated session table: every session's id,
// negotiated timeout, the hash of its secret and its creation time.
//
// The Table is replicated state: it changes only through commands applied in
// log order (create, close, expire), it is part of every snapshot, and it
// reads no clock: CreatedMs comes from the proposer, inside the command.
// Like the tree, a Table is not safe for concurrent use; the server's apply
// goroutine is its only writer.
//
// Expiry is deliberately not here yet. A later, leader-only tracker will keep
// a deadline per session from an injected monotonic clock, batch the touches
// forwarded by followers, restart every deadline at a full timeout when a
// member becomes leader, and report expired ids; the leader then proposes an
// expire command, whose apply calls Table.Close and deletes the session's
// ephemeral nodes in the same step. The tracker will read TimeoutMs and IDs
// from this table and never mutate it.
package session
