//go:build !bug_walsynclag

package wal

// syncLags and syncLagWrites: see bug_walsynclag_bug.go.
const syncLags = false

const syncLagWrites = 1
