//go:build !bug_splitclose

package server

// closeEphemerals deletes a closing session's ephemerals in the close's own
// command. Called with mu held. See bug_splitclose_bug.go.
func (sm *stateMachine) closeEphemerals(index uint64, now int64, session uint64) {
	sm.note(sm.tree.DeleteEphemerals(index, now, session))
}
