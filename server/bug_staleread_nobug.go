//go:build !bug_staleread

package server

// bugStaleRead: see bug_staleread_bug.go. Always false in real builds.
const bugStaleRead = false
