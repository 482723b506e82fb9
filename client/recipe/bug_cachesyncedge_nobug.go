//go:build !bug_cachesyncedge

package recipe

// bugCacheSyncEdge: see bug_cachesyncedge_bug.go. Always false in real builds.
const bugCacheSyncEdge = false
