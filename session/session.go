package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
)

// Errors returned by the table; match with errors.Is.
var (
	ErrExists      = errors.New("session: already exists")
	ErrNotFound    = errors.New("session: not found")
	ErrBadSnapshot = errors.New("session: bad snapshot")
)

// Session is one client session as every member knows it.
type Session struct {
	ID         uint64
	TimeoutMs  int64
	SecretHash [32]byte // SHA-256 of the secret; the secret itself is never stored
	CreatedMs  int64    // Unix ms, stamped by the proposer
}

// Table is the set of live sessions, keyed by id.
type Table struct {
	sessions map[uint64]Session
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{sessions: make(map[uint64]Session)}
}

// Create adds s; it fails with ErrExists if its id is taken.
func (t *Table) Create(s Session) error {
	if _, ok := t.sessions[s.ID]; ok {
		return fmt.Errorf("%w: %016x", ErrExists, s.ID)
	}
	t.sessions[s.ID] = s
	return nil
}

// Get returns the session with the given id.
func (t *Table) Get(id uint64) (Session, bool) {
	s, ok := t.sessions[id]
	return s, ok
}

// Close removes the session with the given id; ErrNotFound if there is none.
func (t *Table) Close(id uint64) error {
	if _, ok := t.sessions[id]; !ok {
		return fmt.Errorf("%w: %016x", ErrNotFound, id)
	}
	delete(t.sessions, id)
	return nil
}

// Clone returns a copy of the table that later changes to t do not touch.
func (t *Table) Clone() *Table {
	c := &Table{sessions: make(map[uint64]Session, len(t.sessions))}
	for id, s := range t.sessions {
		c.sessions[id] = s
	}
	return c
}

// Len returns the number of sessions.
func (t *Table) Len() int { return len(t.sessions) }

// IDs returns the ids of all sessions, sorted.
func (t *Table) IDs() []uint64 {
	ids := make([]uint64, 0, len(t.sessions))
	for id := range t.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// HashSecret returns the SHA-256 of a session secret, the form stored in the
// table and snapshots.
func HashSecret(secret string) [32]byte {
	return sha256.Sum256([]byte(secret))
}

// CheckSecret reports whether secret is the session's secret, in time that
// does not depend on where the hashes differ.
func CheckSecret(s Session, secret string) bool {
	h := HashSecret(secret)
	return subtle.ConstantTimeCompare(h[:], s.SecretHash[:]) == 1
}
