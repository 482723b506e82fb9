// Package client is the Go client of Arbor. It speaks the WebSocket protocol
// of docs/protocol.md (package client/wire) to any member of a cluster.
//
// Dial opens a session on a member of the cluster. A Client is safe for
// concurrent use: every call is pipelined on one
// connection at a time, with requests written by a writer goroutine and
// responses matched to callers by request id by a reader goroutine. Close
// ends the session (the cluster deletes its ephemeral nodes) and stops every
// goroutine of the Client.
//
// Errors from the cluster are *Error values carrying the protocol's code;
// match them with errors.Is against the sentinels (ErrNoNode, ...). A write
// that fails with TIMEOUT, UNAVAILABLE or a lost connection may or may not
// have been applied: IsIndeterminate reports that case.
//
// # Where sessions go
//
// One endpoint of a running cluster is enough: a Client asks its member for
// the cluster's members (the members op) and spreads over them and fails
// over to them (Config.NoDiscovery keeps it to Config.Endpoints). The
// Clients of one process that dial the same Endpoints share what they
// learned: the first session goes to an endpoint given, and each later one
// to the next member of a rotation over the members the last members answer
// called alive, with a random start per process, so a process's sessions
// spread evenly over the cluster and its processes start at different
// members. Such a later Dial sends no members request of its own while a
// members answer or a ping (whose members_hash says whether the members
// changed) has confirmed the shared list within 30s; if the member at a
// listed address turns out to be another one, Dial drops the list and
// starts over from Endpoints. A member that refuses the connection or
// answers UNAVAILABLE (no leader) is skipped. After a disconnect the
// Client tries the other members first, live ones in random order, the one
// it lost last, so the sessions of a member that fails spread over the
// rest. Config.InOrder instead tries the endpoints in the order given, at
// Dial and after a disconnect: for a session on a given member (with
// NoDiscovery and one endpoint, on that member or nowhere). With
// Config.NetDialContext set, nothing learned is shared between Clients.
//
// # One session across disconnects
//
// When the connection breaks, the Client resumes the same session (hello
// with its id, secret and the last zxid it has seen, so that it never sees
// time go backwards) on another member, as above, with jittered exponential
// backoff (Config.ReconnectBackoff, MaxReconnectBackoff). Meanwhile:
//   - reads in flight (get, exists, children, sync, members, ping) are sent
//     again on the new connection: the caller only sees latency;
//   - writes in flight (create, set, delete, multi, lock, unlock, elect,
//     resign, close) fail with CONNECTION_LOST and Indeterminate set;
//   - calls made while disconnected wait, bounded by their context, and are
//     sent once the session is resumed.
//
// Watches are per connection on the server. After a resume the client
// registers every persistent watch (Watch) again with since the last event
// it delivered, so a Watcher sees no gap and no duplicate (or, when the new
// member no longer holds those changes, one EventResync with the current
// state). One-shot watches (WatchOnce) pending at a disconnect end with an
// event whose Err is ErrWatchLost. See Watcher and WatchEvent.
// Watcher.Sync returns a zxid up to which every event of a watch is on its
// Events channel, also across a resume: what a local cache built from the
// events needs to know it is exact (recipe.TreeCache uses it).
//
// A connection counts as broken on a read or write error, when the member
// closes it, when a ping is answered UNAVAILABLE (the member cannot renew
// sessions: it is cut off from the leader) or not answered within
// timeout/3, and when a ping answer says the member's last confirmed
// renewal of the session is older than timeout/3 plus min(1s, timeout/6):
// the member has stopped renewing, and the client moves while about half
// the timeout is left.
//
// If the cluster refuses the resume (SESSION_EXPIRED, AUTH_FAILED), sends
// the session expired event, or answers any request SESSION_EXPIRED, the
// session is over: every call fails with ErrSessionExpired and nothing is
// recreated behind the caller's back. Dial again for a new session.
//
// # Session deadline, Jeopardy and Context
//
// The cluster expires a session when no member has heard from it for its
// timeout, and a client cut off from the cluster cannot know when that
// happens. So the Client keeps, on its monotonic clock, a deadline before
// which the cluster cannot have expired the session: at Dial, when the hello
// was sent plus the timeout; afterwards, for each ping answer carrying
// renewed_ago_ms, when that ping was sent minus renewed_ago_ms plus the
// timeout. Nothing else moves it, not even a resume. Each estimate is
// shortened by a margin of max(50ms, timeout/50) for clock-rate drift and
// scheduling delays. The Client pings every timeout/3 whether or not the
// connection is busy, and after a resume at once and then every 100ms (at
// most 5 times) until an answer confirms a renewal.
//
// When the deadline passes, connected or not, the session is in Jeopardy:
// the cluster may expire it at any moment, so whatever it guards (a lock,
// leadership, ephemeral nodes) may already belong to someone else. Context
// returns a context cancelled at that moment (and on expiry and Close):
// give it to the work a lock holder or leader does, so that the work stops
// in time. When a later ping confirms a renewal, the Client leaves Jeopardy
// and Context returns a fresh context; the old one stays cancelled.
// Deadline returns the deadline itself, for work that checks how much of it
// is left before it acts (a cancellation a late-scheduled process sees late
// is no help).
//
// Arbor members answer pings with renewed_ago_ms once the leader has
// confirmed a renewal (docs/architecture.md, "Session liveness", says why
// the deadline this gives is never later than the leader's). A server that
// does not send it never moves the deadline: such a Client enters Jeopardy
// one timeout after Dial and stays there, while working normally otherwise.
//
// # States
//
// State returns the current state and States a channel that reports every
// change, once and in order: Connected first, then any of Disconnected,
// Resumed, Jeopardy, and finally Expired and/or Closed. The Client never
// blocks on that channel; see States for its bound.
//
// # Goroutines
//
// A Client runs a supervisor goroutine (which reconnects) and per
// connection a reader and a writer; the writer also sends the pings, and a
// timer (not a goroutine) watches the session deadline. A members request
// runs on a goroutine of its own while it is answered. Config.OnEvent is
// called on the reader goroutine. All of them stop when the session expires
// or Close is called; call Close in every case.
package client
