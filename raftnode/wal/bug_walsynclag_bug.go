//go:build bug_walsynclag

package wal

// syncLags is a negative control for the fault suite
// (.ci/negative-controls.sh): a Save syncs what the Save before it wrote
// and returns before its own batch is durable, so a member acknowledges
// entries (and the leader answers writes) that a power cut loses.
const syncLags = true
