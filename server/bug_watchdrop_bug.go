//go:build bug_watchdrop

package server

// bugWatchDrop is a negative control for the fault suite
// (.ci/negative-controls.sh): one in 40 data events fired to a live watch
// is silently not sent.
const bugWatchDrop = true
