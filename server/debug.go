package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
)

// debugState is the answer of GET /debug/state.
type debugState struct {
	Member      string `json:"member"`
	Applied     uint64 `json:"applied"`
	StateSHA256 string `json:"state_sha256"`
	Nodes       int    `json:"nodes"`
	Sessions    int    `json:"sessions"`
	// ClusterVersion is the replicated cluster version (see command.go).
	ClusterVersion uint64 `json:"cluster_version"`
	// Commit is the raft commit index this member knows, and Leader whether
	// it knows a leader: a member with a leader whose applied index has
	// reached its commit index has settled.
	Commit uint64 `json:"commit"`
	Leader bool   `json:"leader"`
}

// stateDigest returns the applied index and the SHA-256 of the state
// machine's snapshot bytes, with the node and session counts, all of one
// point-in-time view taken under the lock (the apply goroutine holds it for
// a whole batch and stores the applied index inside it, so the hash is
// exactly the state at applied); the hashing runs outside the lock, so it
// does not hold up apply.
func (sm *stateMachine) stateDigest() (applied uint64, sum [sha256.Size]byte, nodes, sessions int, err error) {
	sm.mu.Lock()
	v := sm.viewLocked()
	sm.mu.Unlock()
	h := sha256.New()
	if _, err := v.WriteTo(h); err != nil {
		return 0, sum, 0, 0, err
	}
	h.Sum(sum[:0])
	return v.applied, sum, v.tree.NumNodes(), v.sessions.Len(), nil
}

// serveDebugState answers GET /debug/state on the client port with
//
//	{"member": NAME, "applied": N, "state_sha256": "<hex>", "nodes": K, "sessions": S,
//	 "cluster_version": V, "commit": C, "leader": true|false}
//
// where state_sha256 is the SHA-256 of the state machine snapshot (tree,
// session table and apply clock; the format in snapshot.go) at exactly the
// applied index N. Snapshots are deterministic, so two members that report
// the same applied index must report the same hash: fault and determinism
// checkers poll this to find a member whose state diverged. It serializes
// a point-in-time view of the whole state while apply goes on: a debugging
// tool, not something to poll in a hot loop on a large tree.
func (s *server) serveDebugState(w http.ResponseWriter, _ *http.Request) {
	st := s.rep.Status() // before the digest: its commit index is no later than the state's
	applied, sum, nodes, sessions, err := s.sm.stateDigest()
	if err != nil {
		http.Error(w, fmt.Sprintf("state digest: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(debugState{
		Member: s.cfg.Name, Applied: applied, StateSHA256: hex.EncodeToString(sum[:]),
		Nodes: nodes, Sessions: sessions, ClusterVersion: s.sm.clusterVersion.Load(),
		Commit: st.Commit, Leader: st.Leader != 0,
	})
}
