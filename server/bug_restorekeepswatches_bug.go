//go:build bug_restorekeepswatches

package server

// bugRestoreKeepsWatches is a negative control for the fault suite
// (.ci/negative-controls.sh): a member that installs a snapshot keeps its
// watches and their connections, so they never get the changes the
// snapshot covers, nor a resync.
const bugRestoreKeepsWatches = true
