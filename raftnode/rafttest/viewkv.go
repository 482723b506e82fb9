package rafttest

import (
	"encoding/json"
	"io"

	"github.com/arbor-db/arbor/raftnode"
)

// ViewKV is a KV that implements raftnode.SnapshotViewer, so raftnode
// writes its snapshot files off the raft goroutine. Its snapshots are
// KV's: either restores the other's.
type ViewKV struct {
	*KV
	// BeforeWrite, when set, runs at the start of every view's WriteTo,
	// on raftnode's snapshot goroutine, with the view's index: tests block
	// there to make a snapshot slow. Set it before the node runs.
	BeforeWrite func(index uint64, w io.Writer) error
}

var _ raftnode.SnapshotViewer = (*ViewKV)(nil)

// NewViewKV returns an empty ViewKV.
func NewViewKV() *ViewKV { return &ViewKV{KV: NewKV()} }

// SnapshotView implements raftnode.SnapshotViewer. Records are append-only
// and never modified in place, so the view shares them: a slice of the
// current length stays the state as of now while Apply appends (into spare
// capacity past its end or a new array) and Restore replaces the slice.
func (v *ViewKV) SnapshotView() (io.WriterTo, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &kvView{s: kvSnapshot{Applied: v.applied, Records: v.records[:len(v.records):len(v.records)]}, before: v.BeforeWrite}, nil
}

type kvView struct {
	s      kvSnapshot
	before func(uint64, io.Writer) error
}

func (k *kvView) WriteTo(w io.Writer) (int64, error) {
	if k.before != nil {
		if err := k.before(k.s.Applied, w); err != nil {
			return 0, err
		}
	}
	b, err := json.Marshal(k.s)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(append(b, '\n'))
	return int64(n), err
}
