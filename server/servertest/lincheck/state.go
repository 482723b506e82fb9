package lincheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MemberState is the answer of a member's GET /debug/state.
type MemberState struct {
	Member      string `json:"member"`
	Applied     uint64 `json:"applied"`
	StateSHA256 string `json:"state_sha256"`
	Nodes       int    `json:"nodes"`
	Sessions    int    `json:"sessions"`
}

// FetchState asks the member at addr (its client HOST:PORT) for
// /debug/state.
func FetchState(ctx context.Context, addr string) (MemberState, error) {
	var st MemberState
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/state", nil)
	if err != nil {
		return st, fmt.Errorf("lincheck: state of %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("lincheck: state of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("lincheck: state of %s: HTTP %d", addr, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("lincheck: state of %s: %w", addr, err)
	}
	return st, nil
}

// CheckStateHashes polls /debug/state on every member (client HOST:PORT
// addresses) until all report the same applied index, then requires the
// same state hash. Stop writes first; background commands (session
// expiries) only delay convergence. It returns ErrStateDiverged (a
// violation) when hashes differ at one index — also when any two members
// are seen at the same index with different hashes while polling — and
// ErrNotConverged when ctx ends first (an unreachable member included).
func CheckStateHashes(ctx context.Context, addrs []string) error {
	var last []MemberState
	var lastErr error
	for {
		states := make([]MemberState, 0, len(addrs))
		lastErr = nil
		for _, a := range addrs {
			st, err := FetchState(ctx, a)
			if err != nil {
				lastErr = err
				break
			}
			states = append(states, st)
		}
		if lastErr == nil {
			last = states
			if err := compareStates(states); err != nil {
				return err
			}
			if sameApplied(states) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s (last error: %v)", ErrNotConverged, describeStates(last), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func sameApplied(states []MemberState) bool {
	for _, s := range states[1:] {
		if s.Applied != states[0].Applied {
			return false
		}
	}
	return true
}

// compareStates fails when two members at one applied index differ.
func compareStates(states []MemberState) error {
	for i, a := range states {
		for _, b := range states[i+1:] {
			if a.Applied == b.Applied && a.StateSHA256 != b.StateSHA256 {
				return fmt.Errorf("%w: %s", ErrStateDiverged, describeStates(states))
			}
		}
	}
	return nil
}

func describeStates(states []MemberState) string {
	parts := make([]string, len(states))
	for i, s := range states {
		h := s.StateSHA256
		if len(h) > 12 {
			h = h[:12]
		}
		parts[i] = fmt.Sprintf("%s applied=%d sha=%s nodes=%d sessions=%d", s.Member, s.Applied, h, s.Nodes, s.Sessions)
	}
	return strings.Join(parts, "; ")
}
