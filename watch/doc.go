// Package watch holds a member's watches and the bounded history of recent
// changes that lets a watch resume since a zxid.
//
// It is pure: no goroutines, no clock, no randomness, no locks. The server
// calls it under its state machine lock: Match from the apply goroutine with
// the events each command made, Add and Remove from readers, History.Since
// when a watch resumes.
//
// # Kinds and what fires them
//
// One-shot watches follow ZooKeeper's rules and end with their first event:
//   - Data (get): a set of the node (data) or its delete (deleted);
//   - Exists (exists): its create (created), a set (data) or its delete
//     (deleted);
//   - Children (children): a child created or deleted (children) or the
//     node's own delete (deleted).
//
// Persistent watches report every matching change until removed:
//   - Persistent: created, deleted and data of its node, and children when
//     the node's child list changes;
//   - Recursive: created, deleted and data of its node and of every
//     descendant (no children events: the created and deleted events of the
//     children say the same).
//
// A persistent watch outlives the delete of its node and reports its
// re-creation. Persistent events carry the new data on created and data.
//
// # Cost
//
// Match looks up each event's path in a map of exact-path watches and walks
// the path's ancestors in a map of recursive watches: it costs the path
// depth plus the watches it fires, never the total number of watches.
package watch
