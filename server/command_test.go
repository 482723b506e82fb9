package server

import (
	"errors"
	"reflect"
	"testing"

	"github.com/arbor-db/arbor/tree"
)

func sampleCommands() []command {
	return []command{
		{Type: cmdCreateSession, Origin: origin{1, 2}, TimeMs: 1700000000000, SecretHash: [32]byte{1, 2, 3}, TimeoutMs: 10000},
		{Type: cmdCloseSession, Origin: origin{3, 4}, TimeMs: -5, Session: 0xdeadbeef},
		{Type: cmdTreeOps, Origin: origin{5, 6}, TimeMs: 7, Session: 9, Ops: []tree.Op{
			{Kind: tree.OpCreate, Path: "/a", Data: []byte("x"), Version: -1, Owner: 9, Sequential: true, TTLMs: 0},
		}},
		{Type: cmdTreeOps, Origin: origin{5, 7}, TimeMs: 8, Session: 9, Multi: true, Ops: []tree.Op{
			{Kind: tree.OpCreate, Path: "/c", Container: true, Version: -1},
			{Kind: tree.OpSet, Path: "/a", Data: []byte("yy"), Version: 3},
			{Kind: tree.OpDelete, Path: "/b", Version: -1, Recursive: true},
			{Kind: tree.OpCheck, Path: "/a", Version: 4},
			{Kind: tree.OpCreate, Path: "/t", TTLMs: 1000, Version: -1},
		}},
		{Type: cmdTreeOps, Origin: origin{5, 8}, Multi: true},
		{Type: cmdMemberAttrs, Origin: origin{1, 9}, TimeMs: 10, Member: memberAttrs{Name: "n1", ClientURL: "127.0.0.1:1", PeerURL: "127.0.0.1:2"}},
		{Type: cmdSetClusterVersion, Origin: origin{1, 10}, TimeMs: 11, Version: 2},
		{Type: cmdExpireSessions, Origin: origin{1, 11}, TimeMs: 12, Sessions: []uint64{3, 9, 1 << 63}},
		{Type: cmdSessionMoved, Origin: origin{2, 12}, TimeMs: 13, Session: 9, MovedTo: 2, MovedConn: 77},
		{Type: cmdReap, Origin: origin{1, 13}, TimeMs: 14, Reap: []reapNode{
			{Kind: reapContainer, Path: "/locks/a", Czxid: 5},
			{Kind: reapTTL, Path: "/t", Czxid: 6, Mzxid: 8},
		}},
		{Type: cmdLock, Origin: origin{1, 14}, TimeMs: 15, Session: 9, Lock: lockSpec{Path: "/locks/a", Kind: lockWrite, Class: classLock}},
		{Type: cmdLock, Origin: origin{1, 15}, TimeMs: 16, Session: 9, Lock: lockSpec{Path: "/l", Kind: lockRead, Try: true, Class: classLock}},
		{Type: cmdLock, Origin: origin{1, 16}, TimeMs: 17, Session: 9, Lock: lockSpec{Path: "/e", Kind: lockCandidate, Value: []byte("host:1"), Class: classElection}},
		{Type: cmdUnlock, Origin: origin{1, 17}, TimeMs: 18, Session: 9, Lock: lockSpec{Path: "/l", Class: classLock, Withdraw: 42}},
		{Type: cmdUnlock, Origin: origin{1, 18}, TimeMs: 19, Session: 9, Lock: lockSpec{Path: "/e", Class: classElection}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		b := c.encode(nil)
		got, err := decodeCommand(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
		// Every strict prefix is rejected, never accepted as something else.
		for i := range len(b) {
			if _, err := decodeCommand(b[:i]); !errors.Is(err, errBadCommand) {
				t.Fatalf("prefix %d of type %d: err %v, want errBadCommand", i, c.Type, err)
			}
		}
		if _, err := decodeCommand(append(b, 0)); !errors.Is(err, errBadCommand) {
			t.Errorf("trailing byte accepted for type %d", c.Type)
		}
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	good := sampleCommands()[2].encode(nil)
	cases := map[string][]byte{
		"empty":                nil,
		"version 2":            append([]byte{2}, good[1:]...),
		"unknown type":         append([]byte{1, 99}, good[2:]...),
		"expire none":          (&command{Type: cmdExpireSessions}).encode(nil),
		"expire unsorted":      (&command{Type: cmdExpireSessions, Sessions: []uint64{5, 5}}).encode(nil),
		"version 1 by command": (&command{Type: cmdSetClusterVersion, Version: 1}).encode(nil),
		"reap none":            (&command{Type: cmdReap}).encode(nil),
		"reap kind 9":          (&command{Type: cmdReap, Reap: []reapNode{{Kind: 9, Path: "/a"}}}).encode(nil),
		"move no member":       (&command{Type: cmdSessionMoved, Session: 1}).encode(nil),
		"lock no session":      (&command{Type: cmdLock, Lock: lockSpec{Path: "/l", Kind: lockWrite}}).encode(nil),
		"lock kind 9":          (&command{Type: cmdLock, Session: 1, Lock: lockSpec{Path: "/l", Kind: 9}}).encode(nil),
		"lock with value":      (&command{Type: cmdLock, Session: 1, Lock: lockSpec{Path: "/l", Kind: lockWrite, Value: []byte("v")}}).encode(nil),
		"try a candidacy":      (&command{Type: cmdLock, Session: 1, Lock: lockSpec{Path: "/l", Kind: lockCandidate, Try: true}}).encode(nil),
		"unlock class 9":       (&command{Type: cmdUnlock, Session: 1, Lock: lockSpec{Path: "/l", Class: 9}}).encode(nil),
	}
	// Overwrite the op count of an empty multi with a huge uvarint.
	huge := (&command{Type: cmdTreeOps, Multi: true}).encode(nil)
	huge = append(huge[:len(huge)-1], 0xff, 0xff, 0xff, 0xff, 0x0f)
	cases["huge count"] = huge
	for name, b := range cases {
		if _, err := decodeCommand(b); !errors.Is(err, errBadCommand) {
			t.Errorf("%s: err %v, want errBadCommand", name, err)
		}
	}
}

func TestDecodeCommandDoesNotAlias(t *testing.T) {
	c := sampleCommands()[2]
	b := c.encode(nil)
	got, err := decodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(got.Ops[0].Data) != "x" || got.Ops[0].Path != "/a" {
		t.Fatalf("decoded command aliases the input: %+v", got.Ops[0])
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(c.encode(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			if !errors.Is(err, errBadCommand) {
				t.Fatalf("error does not wrap errBadCommand: %v", err)
			}
			return
		}
		again, err := decodeCommand(c.encode(nil))
		if err != nil {
			t.Fatalf("re-encoding of a decoded command does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encode round trip differs:\n got %+v\nwant %+v", again, c)
		}
	})
}
