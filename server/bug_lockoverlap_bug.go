//go:build bug_lockoverlap

package server

// bugLockOverlap is a negative control for the fault suite
// (.ci/negative-controls.sh): an exclusive lock child whose sequence number
// is a multiple of 7 is granted while the child before it still holds.
const bugLockOverlap = true
