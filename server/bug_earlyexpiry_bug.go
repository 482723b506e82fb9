//go:build bug_earlyexpiry

package server

// bugEarlyExpiry is a negative control for the fault suite
// (.ci/negative-controls.sh): the leader tracks every session with a third
// of its timeout, so sessions expire while their clients still count on
// them.
const bugEarlyExpiry = true
