//go:build bug_splitclose

package server

import "sync"

// A negative control for the fault suite (.ci/negative-controls.sh): close
// ends the session (and is answered) in its own command, but the session's
// ephemerals are only deleted by a later command, the next close of any
// session. Not in snapshots either.
var lingering = struct {
	sync.Mutex
	m map[*stateMachine][]uint64
}{m: map[*stateMachine][]uint64{}}

func (sm *stateMachine) closeEphemerals(index uint64, now int64, session uint64) {
	lingering.Lock()
	defer lingering.Unlock()
	for _, s := range lingering.m[sm] {
		sm.note(sm.tree.DeleteEphemerals(index, now, s))
	}
	lingering.m[sm] = []uint64{session}
}
