package raftnode

import "testing"

// Members snapshot at indexes shifted by their place among the members, so
// that no two take theirs at once; a lone member keeps the plain multiples.
func TestSnapshotsStaggeredAcrossMembers(t *testing.T) {
	cs := confState{Voters: []uint64{30, 10}, Learners: []uint64{20}}
	tests := []struct {
		id        uint64
		cs        confState
		wantPhase uint64
		firstAt   uint64 // first applied index at which a snapshot is due
	}{
		{10, cs, 0, 90},
		{20, cs, 30, 60},
		{30, cs, 60, 30},
		{10, confState{Voters: []uint64{10}}, 0, 90},
	}
	for _, tt := range tests {
		n := &Node{id: tt.id, confState: tt.cs, cfg: Config{SnapshotEntries: 90, SnapshotBytes: 1 << 40}}
		if got := n.snapshotPhase(); got != tt.wantPhase {
			t.Errorf("member %d of %v: phase %d, want %d", tt.id, tt.cs, got, tt.wantPhase)
		}
		first := uint64(0)
		for n.applied = 1; n.applied <= 200 && first == 0; n.applied++ {
			if n.snapshotDue() {
				first = n.applied
			}
		}
		if first != tt.firstAt {
			t.Errorf("member %d of %v: first snapshot at %d, want %d", tt.id, tt.cs, first, tt.firstAt)
		}
		// After one, the next comes SnapshotEntries later.
		n.snapIndex = first
		for n.applied = first + 1; !n.snapshotDue(); n.applied++ {
		}
		if n.applied != first+90 {
			t.Errorf("member %d: next snapshot at %d, want %d", tt.id, n.applied, first+90)
		}
	}
}
