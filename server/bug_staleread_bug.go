//go:build bug_staleread

package server

// bugStaleRead is a negative control for the fault suite
// (.ci/negative-controls.sh): linearizable reads skip the ReadIndex barrier
// and answer from local state at once.
const bugStaleRead = true
