package rafttest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"

	"github.com/arbor-db/arbor/raftnode"
)

// Record is one applied command.
type Record struct {
	Index uint64 `json:"i"`
	Cmd   string `json:"c"`
}

// KV is an append-only test state machine: it records (index, command) for
// every command it applies and checks that indexes arrive contiguously.
type KV struct {
	mu       sync.Mutex
	applied  uint64
	records  []Record
	restores int
	errs     []string
}

var _ raftnode.StateMachine = (*KV)(nil)

// NewKV returns an empty KV.
func NewKV() *KV { return &KV{} }

// Apply implements raftnode.StateMachine.
func (k *KV) Apply(ents []raftnode.Entry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range ents {
		if e.Index != k.applied+1 {
			k.errs = append(k.errs, fmt.Sprintf("applied %d then %d", k.applied, e.Index))
		}
		k.applied = e.Index
		if e.Data != nil {
			k.records = append(k.records, Record{Index: e.Index, Cmd: string(e.Data)})
		}
	}
	return nil
}

type kvSnapshot struct {
	Applied uint64   `json:"applied"`
	Records []Record `json:"records"`
}

// Snapshot implements raftnode.StateMachine.
func (k *KV) Snapshot(w io.Writer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return json.NewEncoder(w).Encode(kvSnapshot{Applied: k.applied, Records: k.records})
}

// Restore implements raftnode.StateMachine.
func (k *KV) Restore(index uint64, r io.Reader) error {
	var s kvSnapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	if s.Applied != index {
		return fmt.Errorf("kv snapshot holds index %d, restoring at %d", s.Applied, index)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.applied, k.records = s.Applied, s.Records
	k.restores++
	return nil
}

// Applied is the index of the last applied entry.
func (k *KV) Applied() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.applied
}

// Records returns a copy of the applied commands.
func (k *KV) Records() []Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.records)
}

// Has reports whether cmd was applied.
func (k *KV) Has(cmd string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range k.records {
		if r.Cmd == cmd {
			return true
		}
	}
	return false
}

// Restores counts snapshot restores.
func (k *KV) Restores() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.restores
}

// Errors lists ordering violations seen by Apply.
func (k *KV) Errors() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.errs)
}

// Hash summarises the records up to and including index upTo.
func (k *KV) Hash(upTo uint64) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := fnv.New64a()
	for _, r := range k.records {
		if r.Index > upTo {
			break
		}
		fmt.Fprintf(h, "%d:%s;", r.Index, r.Cmd)
	}
	return h.Sum64()
}

// Len is the number of applied commands.
func (k *KV) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.records)
}
