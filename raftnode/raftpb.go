package raftnode

// All raftpb (un)marshalling and conversion lives in this file, so a future
// move to raft v3.7 (pointer-based protobuf types) touches one place: no
// other file of the package imports raftpb. They name its types by the
// aliases below and build its values with the helpers here.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Message is a raft message, as a Transport carries it.
type Message = raftpb.Message

// The raftpb types the rest of the package holds.
type (
	logEntry       = raftpb.Entry
	hardState      = raftpb.HardState
	confState      = raftpb.ConfState
	snapshotMeta   = raftpb.SnapshotMetadata
	snapshot       = raftpb.Snapshot
	confChangeType = raftpb.ConfChangeType
)

// The membership changes raftnode proposes and applies.
const (
	ccAddNode    = raftpb.ConfChangeAddNode
	ccAddLearner = raftpb.ConfChangeAddLearnerNode
	ccRemoveNode = raftpb.ConfChangeRemoveNode
	ccUpdateNode = raftpb.ConfChangeUpdateNode
)

// newConfChange is the proposal of a change of one member.
func newConfChange(typ confChangeType, id uint64, ctx ccContext) raftpb.ConfChangeI {
	return raftpb.ConfChange{Type: typ, NodeID: id, Context: encodeCCContext(ctx)}
}

// proposalMessage is the MsgProp that steps cmds into raft as normal
// entries, in order.
func proposalMessage(from uint64, cmds [][]byte) Message {
	ents := make([]raftpb.Entry, len(cmds))
	for i, c := range cmds {
		ents[i] = raftpb.Entry{Data: c}
	}
	return raftpb.Message{Type: raftpb.MsgProp, From: from, Entries: ents}
}

// fileSnapshot is the raft snapshot of the snapshot file term/index, as
// raft's Storage returns it: its Data names the file, never the state.
func fileSnapshot(term, index uint64, cs confState) raftpb.Snapshot {
	return raftpb.Snapshot{
		Data:     []byte(snapFileName(term, index)),
		Metadata: raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: cs},
	}
}

// readySnapshot returns the metadata of rd's snapshot, or nil if rd has
// none.
func readySnapshot(rd raft.Ready) *snapshotMeta {
	if raft.IsEmptySnap(rd.Snapshot) {
		return nil
	}
	m := rd.Snapshot.Metadata
	return &m
}

// cloneConfState deep-copies cs, for a goroutine that marshals it while the
// raft goroutine moves on.
func cloneConfState(cs confState) confState {
	return raftpb.ConfState{
		Voters:         slices.Clone(cs.Voters),
		Learners:       slices.Clone(cs.Learners),
		VotersOutgoing: slices.Clone(cs.VotersOutgoing),
		LearnersNext:   slices.Clone(cs.LearnersNext),
		AutoLeave:      cs.AutoLeave,
	}
}

func isNormalEntry(e logEntry) bool { return e.Type == raftpb.EntryNormal }

func raftIsEmptyHardState(h hardState) bool {
	return h.Term == 0 && h.Vote == 0 && h.Commit == 0
}

// ccContext is the Context of every conf change entry. It lets each member
// learn names and peer URLs from the log itself.
type ccContext struct {
	Name    string `json:"name"`
	PeerURL string `json:"peer_url"`
	Nonce   uint64 `json:"nonce,omitempty"` // matches a waiting AddMember/RemoveMember call
}

func encodeCCContext(c ccContext) []byte {
	b, _ := json.Marshal(c) // cannot fail for this struct
	return b
}

func decodeCCContext(b []byte) ccContext {
	var c ccContext
	if len(b) > 0 {
		_ = json.Unmarshal(b, &c) // a foreign context only loses the metadata
	}
	return c
}

// memberMeta is what raftnode remembers about a member besides raft's
// ConfState. Removed members stay as tombstones so their id is never reused.
type memberMeta struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	PeerURL string `json:"peer_url"`
	Removed bool   `json:"removed,omitempty"`
}

// confChangeOp is one change of a conf change entry, flattened.
type confChangeOp struct {
	typ    raftpb.ConfChangeType
	nodeID uint64
	ctx    ccContext
}

// decodeConfChange decodes a conf change entry (V1 or V2).
func decodeConfChange(e raftpb.Entry) (raftpb.ConfChangeI, []confChangeOp, error) {
	switch e.Type {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, nil, fmt.Errorf("%w: conf change at %d: %w", ErrCorrupt, e.Index, err)
		}
		return cc, []confChangeOp{{typ: cc.Type, nodeID: cc.NodeID, ctx: decodeCCContext(cc.Context)}}, nil
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, nil, fmt.Errorf("%w: conf change v2 at %d: %w", ErrCorrupt, e.Index, err)
		}
		ctx := decodeCCContext(cc.Context)
		ops := make([]confChangeOp, 0, len(cc.Changes))
		for _, ch := range cc.Changes {
			ops = append(ops, confChangeOp{typ: ch.Type, nodeID: ch.NodeID, ctx: ctx})
		}
		return cc, ops, nil
	}
	return nil, nil, nil
}

func isConfChange(e raftpb.Entry) bool {
	return e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2
}

// toEntries converts committed raft entries to state machine entries.
// Data is nil for anything but a non-empty normal entry.
func toEntries(ents []raftpb.Entry) []Entry {
	out := make([]Entry, 0, len(ents))
	for _, e := range ents {
		var data []byte
		if isNormalEntry(e) && len(e.Data) > 0 {
			data = e.Data
		}
		out = append(out, Entry{Index: e.Index, Term: e.Term, Data: data})
	}
	return out
}

func marshalEntry(e *raftpb.Entry) ([]byte, error)         { return e.Marshal() }
func marshalHardState(h *raftpb.HardState) ([]byte, error) { return h.Marshal() }
func marshalConfState(c *raftpb.ConfState) ([]byte, error) { return c.Marshal() }
func marshalSnapMeta(m *raftpb.SnapshotMetadata) ([]byte, error) {
	return m.Marshal()
}

// entryTerm reads the Term of a marshalled raftpb.Entry without decoding
// (and so copying) its Data: a term lookup in a log of 1 MiB entries would
// otherwise cost a 1 MiB allocation. The encoding is protobuf's: Type (1),
// Term (2), Index (3) are varints, Data (4) is length-delimited. The fast
// path takes only the layout Marshal writes (each field at most once, in
// field order, Data last and exactly to the end); anything else, which a
// full decode may read differently (a repeated field's last value wins), is
// decoded whole.
func entryTerm(entry []byte) (uint64, error) {
	var term uint64
	last := uint64(0) // the last field number seen
	for b := entry; ; {
		if len(b) == 0 {
			return term, nil
		}
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			break
		}
		field, wire := tag>>3, tag&7
		if field <= last || field > 4 || (field == 4) != (wire == 2) || (field < 4 && wire != 0) {
			break
		}
		last = field
		b = b[n:]
		v, n := binary.Uvarint(b)
		if n <= 0 {
			break
		}
		b = b[n:]
		if field == 2 {
			term = v
		}
		if field == 4 {
			if v != uint64(len(b)) {
				break
			}
			return term, nil
		}
	}
	var e raftpb.Entry
	if err := e.Unmarshal(entry); err != nil {
		return 0, fmt.Errorf("%w: entry: %w", ErrCorrupt, err)
	}
	return e.Term, nil
}

func unmarshalEntry(b []byte) (raftpb.Entry, error) {
	var e raftpb.Entry
	err := e.Unmarshal(b)
	return e, err
}

func unmarshalHardState(b []byte) (raftpb.HardState, error) {
	var h raftpb.HardState
	err := h.Unmarshal(b)
	return h, err
}

func unmarshalConfState(b []byte) (raftpb.ConfState, error) {
	var c raftpb.ConfState
	err := c.Unmarshal(b)
	return c, err
}

func unmarshalSnapMeta(b []byte) (raftpb.SnapshotMetadata, error) {
	var m raftpb.SnapshotMetadata
	err := m.Unmarshal(b)
	return m, err
}

func marshalMessage(m *raftpb.Message) ([]byte, error) { return m.Marshal() }

func unmarshalMessage(b []byte) (raftpb.Message, error) {
	var m raftpb.Message
	err := m.Unmarshal(b)
	return m, err
}

// CloneMessage deep-copies a raft message, for transports (and fault
// injectors) that hold or duplicate messages after Send returns.
func CloneMessage(m raftpb.Message) raftpb.Message {
	b, err := m.Marshal()
	if err != nil {
		return m
	}
	c, err := unmarshalMessage(b)
	if err != nil {
		return m
	}
	return c
}

// snapshotRef names the snapshot file a MsgSnap refers to.
func snapshotRef(m raftpb.Message) (term, index uint64) {
	if m.Snapshot == nil {
		return 0, 0
	}
	return m.Snapshot.Metadata.Term, m.Snapshot.Metadata.Index
}

// withSnapshotData returns m with its snapshot's Data replaced, without
// touching the caller's Snapshot.
func withSnapshotData(m raftpb.Message, data []byte) raftpb.Message {
	if m.Snapshot == nil {
		return m
	}
	s := *m.Snapshot
	s.Data = data
	m.Snapshot = &s
	return m
}

// IsSnapshotMessage reports whether m is a MsgSnap, whose file a Transport
// streams (OpenSnapshot, ReceiveSnapshot) and whose failure it reports.
func IsSnapshotMessage(m Message) bool { return m.Type == raftpb.MsgSnap }
