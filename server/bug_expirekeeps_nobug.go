//go:build !bug_expirekeeps

package server

// bugExpireKeeps: see bug_expirekeeps_bug.go. Always false in real builds.
const bugExpireKeeps = false
