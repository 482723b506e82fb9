//go:build !bug_applyclock

package server

// applyTime returns the time apply uses for a command: the one its proposer
// stamped (apply never reads a clock). See bug_applyclock_bug.go.
func applyTime(stampedMs int64) int64 { return stampedMs }
