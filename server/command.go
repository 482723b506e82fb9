package server

import (
	"encoding/binary"
	"errors"

	"github.com/arbor-db/arbor/tree"
)

// Command encoding, version 1. All integers are big endian; lengths and
// counts are uvarints; signed fields are zigzag varints.
//
//	version  byte = 1
//	type     byte (cmdCreateSession, cmdCloseSession, cmdTreeOps, cmdMemberAttrs;
//	         from cluster version 2: cmdSetClusterVersion, cmdExpireSessions,
//	         cmdSessionMoved, cmdReap; from 3: cmdLock, cmdUnlock)
//	origin   member uint64, seq uint64 (fixed 8 bytes each)
//	time     varint (Unix ms, stamped by the proposer)
//	body     per type:
//	  CreateSession  secret hash [32]byte, timeout ms varint
//	  CloseSession   session uint64
//	  TreeOps        session uint64, multi byte, op count uvarint, ops
//	  MemberAttrs    name, client URL, peer URL (uvarint length + bytes each)
//	  SetClusterVersion  version uvarint
//	  ExpireSessions     count uvarint, session uint64 (count times, increasing)
//	  SessionMoved       session uint64, member uint64, connection uint64
//	  Reap               count uvarint, then per node: kind byte (1 container,
//	                     2 TTL), path, czxid uvarint, mzxid uvarint
//	  Lock               session uint64, kind byte (lockWrite, lockRead,
//	                     lockCandidate), try byte, path, data (uvarint length
//	                     + bytes: a candidate's value)
//	  Unlock             session uint64, class byte (1 lock, 2 election),
//	                     withdraw czxid uvarint (0: release whatever the
//	                     session has there), path
//	op:      kind byte, flags byte, version varint, ttl varint, path, data
//
// Decoding never panics and rejects trailing bytes, so a command has exactly
// one encoding.

const commandVersion = 1

// cmdType is the kind of a command.
type cmdType uint8

const (
	cmdCreateSession cmdType = iota + 1
	cmdCloseSession
	cmdTreeOps
	cmdMemberAttrs
	cmdSetClusterVersion
	cmdExpireSessions
	cmdSessionMoved
	cmdReap
	cmdLock
	cmdUnlock
)

// introduced is the first cluster version whose code knows a command kind.
func (t cmdType) introduced() uint64 {
	switch {
	case t >= cmdLock:
		return 3
	case t >= cmdSetClusterVersion:
		return 2
	}
	return 1
}

// minClusterVersion is the cluster version from which a command kind may be
// proposed. A member never proposes a kind above the cluster version, so a
// member that cannot decode it is never asked to apply it. The one
// exception is what raises the version: it is proposed only once every
// voter runs the version it raises to.
func (t cmdType) minClusterVersion() uint64 {
	if t == cmdSetClusterVersion {
		return 1
	}
	return t.introduced()
}

// reapKind says why the leader deletes a node on its own.
type reapKind uint8

const (
	reapContainer reapKind = iota + 1 // a container whose last child went
	reapTTL                           // a childless TTL node not modified for its TTL
)

// reapNode names a node to reap as the leader saw it: apply deletes it only
// if it is still that node (same czxid) and, for a TTL node, unmodified
// since (same mzxid), and it still qualifies.
type reapNode struct {
	Kind         reapKind
	Path         string
	Czxid, Mzxid uint64
}

// Op flag bits.
const (
	flagEphemeral  = 1 << 0
	flagSequential = 1 << 1
	flagContainer  = 1 << 2
	flagRecursive  = 1 << 3
	flagSystem     = 1 << 4
	flagsKnown     = 1<<5 - 1
)

// errBadCommand is returned for any command that cannot be decoded.
var errBadCommand = errors.New("server: bad command")

// origin identifies a proposal: the proposing member and its request
// sequence number. The proposer's wait registry is keyed by it.
type origin struct {
	Member, Seq uint64
}

// memberAttrs is what a member publishes about itself under
// /arbor/members/NAME (as JSON).
type memberAttrs struct {
	Name      string `json:"name"`
	ClientURL string `json:"client_url"`
	PeerURL   string `json:"peer_url"`
}

// command is one replicated state machine command. Type says which fields
// matter.
type command struct {
	Type   cmdType
	Origin origin
	TimeMs int64

	// CreateSession.
	SecretHash [32]byte
	TimeoutMs  int64

	// CloseSession, and the owner of a TreeOps command (ephemerals are owned
	// by it; Op.Owner is set from it on decode).
	Session uint64

	// TreeOps.
	Ops   []tree.Op
	Multi bool

	// MemberAttrs.
	Member memberAttrs

	// SetClusterVersion.
	Version uint64
	// ExpireSessions.
	Sessions []uint64
	// SessionMoved: Session now served by MovedTo's connection MovedConn.
	MovedTo, MovedConn uint64
	// Reap.
	Reap []reapNode
	// Lock and Unlock (Session is the owner; Ops unused).
	Lock lockSpec
}

// lockSpec is the body of a Lock or Unlock command.
type lockSpec struct {
	Path  string
	Kind  lockKind // Lock
	Try   bool     // Lock: take it only if granted at once (wait_ms 0)
	Value []byte   // Lock of a candidate: its value, the node's data
	Class lockClass
	// Withdraw (Unlock): delete only the waiting node with this czxid, and
	// only if it is still waiting (a wait_ms that ran out).
	Withdraw uint64
}

// encode appends the encoding of c to b.
func (c *command) encode(b []byte) []byte {
	b = append(b, commandVersion, byte(c.Type))
	b = binary.BigEndian.AppendUint64(b, c.Origin.Member)
	b = binary.BigEndian.AppendUint64(b, c.Origin.Seq)
	b = binary.AppendVarint(b, c.TimeMs)
	switch c.Type {
	case cmdCreateSession:
		b = append(b, c.SecretHash[:]...)
		b = binary.AppendVarint(b, c.TimeoutMs)
	case cmdCloseSession:
		b = binary.BigEndian.AppendUint64(b, c.Session)
	case cmdTreeOps:
		b = binary.BigEndian.AppendUint64(b, c.Session)
		b = append(b, boolByte(c.Multi))
		b = binary.AppendUvarint(b, uint64(len(c.Ops)))
		for i := range c.Ops {
			b = encodeOp(b, &c.Ops[i])
		}
	case cmdMemberAttrs:
		b = appendString(b, c.Member.Name)
		b = appendString(b, c.Member.ClientURL)
		b = appendString(b, c.Member.PeerURL)
	case cmdSetClusterVersion:
		b = binary.AppendUvarint(b, c.Version)
	case cmdExpireSessions:
		b = binary.AppendUvarint(b, uint64(len(c.Sessions)))
		for _, id := range c.Sessions {
			b = binary.BigEndian.AppendUint64(b, id)
		}
	case cmdSessionMoved:
		b = binary.BigEndian.AppendUint64(b, c.Session)
		b = binary.BigEndian.AppendUint64(b, c.MovedTo)
		b = binary.BigEndian.AppendUint64(b, c.MovedConn)
	case cmdReap:
		b = binary.AppendUvarint(b, uint64(len(c.Reap)))
		for _, r := range c.Reap {
			b = append(b, byte(r.Kind))
			b = appendString(b, r.Path)
			b = binary.AppendUvarint(b, r.Czxid)
			b = binary.AppendUvarint(b, r.Mzxid)
		}
	case cmdLock:
		b = binary.BigEndian.AppendUint64(b, c.Session)
		b = append(b, byte(c.Lock.Kind), boolByte(c.Lock.Try))
		b = appendString(b, c.Lock.Path)
		b = binary.AppendUvarint(b, uint64(len(c.Lock.Value)))
		b = append(b, c.Lock.Value...)
	case cmdUnlock:
		b = binary.BigEndian.AppendUint64(b, c.Session)
		b = append(b, byte(c.Lock.Class))
		b = binary.AppendUvarint(b, c.Lock.Withdraw)
		b = appendString(b, c.Lock.Path)
	}
	return b
}

func encodeOp(b []byte, op *tree.Op) []byte {
	var flags byte
	if op.Owner != 0 {
		flags |= flagEphemeral
	}
	if op.Sequential {
		flags |= flagSequential
	}
	if op.Container {
		flags |= flagContainer
	}
	if op.Recursive {
		flags |= flagRecursive
	}
	if op.System {
		flags |= flagSystem
	}
	b = append(b, byte(op.Kind), flags)
	b = binary.AppendVarint(b, op.Version)
	b = binary.AppendVarint(b, op.TTLMs)
	b = appendString(b, op.Path)
	b = binary.AppendUvarint(b, uint64(len(op.Data)))
	return append(b, op.Data...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
