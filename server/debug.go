package server

import (
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
}

// serveDebugState answers GET /debug/state on the client port with
//
//	{"member": NAME, "applied": N, "state_sha256": "<hex>", "nodes": K, "sessions": S, "cluster_version": V}
//
// where state_sha256 is the SHA-256 of the state machine snapshot (tree,
// session table and apply clock; the format in snapshot.go) at exactly the
// applied index N. Snapshots are deterministic, so two members that report
// the same applied index must report the same hash: fault and determinism
// checkers poll this to find a member whose state diverged. It serializes
// the whole state under the read lock, which holds up apply meanwhile: a
// debugging tool, not something to poll in a hot loop on a large tree.
func (s *server) serveDebugState(w http.ResponseWriter, _ *http.Request) {
	applied, sum, nodes, sessions, err := s.sm.stateDigest()
	if err != nil {
		http.Error(w, fmt.Sprintf("state digest: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(debugState{
		Member: s.cfg.Name, Applied: applied, StateSHA256: hex.EncodeToString(sum[:]),
		Nodes: nodes, Sessions: sessions, ClusterVersion: s.sm.clusterVersion.Load(),
	})
}
