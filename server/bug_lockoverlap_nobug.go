//go:build !bug_lockoverlap

package server

// bugLockOverlap: see bug_lockoverlap_bug.go. Always false in real builds.
const bugLockOverlap = false
