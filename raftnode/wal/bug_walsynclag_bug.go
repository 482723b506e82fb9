//go:build bug_walsynclag

package wal

// syncLags is a negative control for the fault suite
// (.ci/negative-controls.sh): a write returns before it is synced, and only
// every syncLagWrites-th write syncs (everything written so far), so
// members acknowledge entries, and the leader answers writes, that a power
// cut loses.
const syncLags = true

const syncLagWrites = 10
