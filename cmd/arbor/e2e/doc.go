// Package e2e runs real arbor processes on loopback and checks what a user
// of a cluster would notice: replication, failover, crash recovery and
// durability. It speaks the wire protocol directly, as outside tools do.
package e2e
