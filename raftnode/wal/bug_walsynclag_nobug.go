//go:build !bug_walsynclag

package wal

// syncLags: see bug_walsynclag_bug.go.
const syncLags = false
