//go:build bug_expirekeeps

package server

// bugExpireKeeps is a negative control for the fault suite
// (.ci/negative-controls.sh): an expiry ends the session but leaves its
// ephemeral nodes in the tree.
const bugExpireKeeps = true
