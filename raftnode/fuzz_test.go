package raftnode

import (
	"bytes"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// FuzzReadFrame feeds arbitrary bytes to the peer transport's frame decoder:
// it must never panic, and a frame it accepts must re-encode to a frame that
// decodes to the same message.
func FuzzReadFrame(f *testing.F) {
	for _, m := range []raftpb.Message{
		{Type: raftpb.MsgApp, To: 2, From: 1, Term: 3, Index: 10, LogTerm: 3, Commit: 9,
			Entries: []raftpb.Entry{{Term: 3, Index: 11, Data: []byte("cmd")}}},
		{Type: raftpb.MsgHeartbeat, To: 2, From: 1, Term: 3},
		{Type: raftpb.MsgSnap, To: 2, From: 1, Term: 3, Snapshot: &raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 100, Term: 3}}},
	} {
		var b bytes.Buffer
		if err := writeFrame(&b, 1, m); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, m, err := readFrame(bytes.NewReader(in))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := writeFrame(&b, typ, m); err != nil {
			t.Fatalf("accepted frame does not re-encode: %v", err)
		}
		typ2, m2, err := readFrame(&b)
		if err != nil || typ2 != typ {
			t.Fatalf("re-encoded frame: type %d/%d, %v", typ2, typ, err)
		}
		if m.String() != m2.String() {
			t.Fatalf("round trip changed the message:\n%v\n%v", m.String(), m2.String())
		}
	})
}

// FuzzReadSnapHeader feeds arbitrary bytes to the snapshot file header
// decoder, which reads files from disk and from peers: it must never panic
// and must not allocate from unchecked lengths.
func FuzzReadSnapHeader(f *testing.F) {
	var b bytes.Buffer
	b.WriteString(snapMagic)
	b.Write([]byte{0, 0, 0, 1})
	f.Add(b.Bytes())
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = readSnapHeader(bytes.NewReader(in), int64(len(in)))
	})
}

// FuzzDecodeConfChange feeds arbitrary conf change entries: the decoder
// must never panic.
func FuzzDecodeConfChange(f *testing.F) {
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 7, Context: encodeCCContext(ccContext{Name: "m7", PeerURL: "127.0.0.1:7"})}
	b, err := cc.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(raftpb.EntryConfChange), b)
	f.Add(uint8(raftpb.EntryConfChangeV2), []byte{})
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		_, _, _ = decodeConfChange(raftpb.Entry{Type: raftpb.EntryType(typ % 3), Index: 1, Data: data})
	})
}
