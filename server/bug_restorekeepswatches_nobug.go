//go:build !bug_restorekeepswatches

package server

// bugRestoreKeepsWatches: see bug_restorekeepswatches_bug.go. Always false
// in real builds.
const bugRestoreKeepsWatches = false
