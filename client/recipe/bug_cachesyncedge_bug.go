//go:build bug_cachesyncedge

package recipe

// bugCacheSyncEdge is a negative control for the fault suite
// (.ci/negative-controls.sh): a TreeCache that a read at zxid Z confirms
// takes the events before Z as complete but not the one at Z, and still
// says it is exact at Z: until the next event, it shows the node that
// change touched as it was before.
const bugCacheSyncEdge = true
