//go:build bug_applyclock

package server

import "time"

// applyTime is a negative control for the fault suite
// (.ci/negative-controls.sh): apply reads the member's own clock instead of
// the time the proposer stamped, so members' states drift apart.
func applyTime(int64) int64 { return time.Now().UnixMilli() }
