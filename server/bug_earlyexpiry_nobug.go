//go:build !bug_earlyexpiry

package server

// bugEarlyExpiry: see bug_earlyexpiry_bug.go. Always false in real builds.
const bugEarlyExpiry = false
