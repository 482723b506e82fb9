//go:build !bug_watchdrop

package server

// bugWatchDrop: see bug_watchdrop_bug.go. Always false in real builds.
const bugWatchDrop = false
