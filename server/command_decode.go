package server

import (
	"encoding/binary"
	"fmt"

	"github.com/arbor-db/arbor/tree"
)

// minOpBytes is the smallest encoding of one op (kind, flags, version, ttl,
// path length, data length); it bounds the op count before allocating.
const minOpBytes = 6

// decodeCommand decodes one command. It never panics; any malformed input
// gives an error wrapping errBadCommand. The returned command owns its
// memory: nothing aliases b, which raftnode only lends during Apply.
func decodeCommand(b []byte) (command, error) {
	d := decoder{b: b}
	var c command
	if v := d.byte(); d.err == nil && v != commandVersion {
		return c, fmt.Errorf("%w: unknown version %d", errBadCommand, v)
	}
	c.Type = cmdType(d.byte())
	c.Origin.Member = d.u64()
	c.Origin.Seq = d.u64()
	c.TimeMs = d.varint()
	if d.err != nil {
		return command{}, d.err
	}
	switch c.Type {
	case cmdCreateSession:
		copy(c.SecretHash[:], d.take(32))
		c.TimeoutMs = d.varint()
	case cmdCloseSession:
		c.Session = d.u64()
	case cmdTreeOps:
		c.Session = d.u64()
		switch d.byte() {
		case 0:
		case 1:
			c.Multi = true
		default:
			d.fail("bad multi flag")
		}
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.b)/minOpBytes) {
			d.fail("op count %d exceeds the command size", n)
		}
		if d.err == nil && !c.Multi && n != 1 {
			d.fail("single op command with %d ops", n)
		}
		if d.err == nil && n > 0 {
			c.Ops = make([]tree.Op, n)
			for i := range c.Ops {
				d.op(&c.Ops[i], c.Session)
			}
		}
	case cmdMemberAttrs:
		c.Member.Name = d.string()
		c.Member.ClientURL = d.string()
		c.Member.PeerURL = d.string()
	case cmdSetClusterVersion:
		c.Version = d.uvarint()
		if d.err == nil && c.Version < 2 {
			d.fail("cluster version %d: only versions from 2 are set by command", c.Version)
		}
	case cmdExpireSessions:
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.b)/8) {
			d.fail("session count %d exceeds the command size", n)
		}
		if d.err == nil && n == 0 {
			d.fail("expiry of no session")
		}
		for i := uint64(0); d.err == nil && i < n; i++ {
			id := d.u64()
			if d.err == nil && (id == 0 || i > 0 && id <= c.Sessions[i-1]) {
				d.fail("session ids not increasing")
			}
			c.Sessions = append(c.Sessions, id)
		}
	case cmdSessionMoved:
		c.Session = d.u64()
		c.MovedTo = d.u64()
		c.MovedConn = d.u64()
		if d.err == nil && (c.Session == 0 || c.MovedTo == 0) {
			d.fail("session move without a session or member")
		}
	case cmdReap:
		n := d.uvarint()
		// kind, path length, czxid, mzxid: at least 4 bytes a node.
		if d.err == nil && (n == 0 || n > uint64(len(d.b)/4)) {
			d.fail("reap count %d does not fit the command", n)
		}
		for i := uint64(0); d.err == nil && i < n; i++ {
			r := reapNode{Kind: reapKind(d.byte())}
			r.Path = d.string()
			r.Czxid = d.uvarint()
			r.Mzxid = d.uvarint()
			if d.err == nil && r.Kind != reapContainer && r.Kind != reapTTL {
				d.fail("unknown reap kind %d", r.Kind)
			}
			c.Reap = append(c.Reap, r)
		}
	case cmdLock:
		c.Session = d.u64()
		c.Lock.Kind = lockKind(d.byte())
		switch d.byte() {
		case 0:
		case 1:
			c.Lock.Try = true
		default:
			d.fail("bad try flag")
		}
		c.Lock.Path = d.string()
		c.Lock.Value = d.bytes()
		if d.err == nil && (c.Session == 0 || c.Lock.Kind.class() == 0) {
			d.fail("lock without a session or with unknown kind %d", c.Lock.Kind)
		}
		if d.err == nil && c.Lock.Value != nil && c.Lock.Kind != lockCandidate {
			d.fail("a lock node takes no value")
		}
		if d.err == nil && c.Lock.Try && c.Lock.Kind == lockCandidate {
			d.fail("a candidacy cannot be tried")
		}
		c.Lock.Class = c.Lock.Kind.class()
	case cmdUnlock:
		c.Session = d.u64()
		c.Lock.Class = lockClass(d.byte())
		c.Lock.Withdraw = d.uvarint()
		c.Lock.Path = d.string()
		if d.err == nil && (c.Session == 0 || c.Lock.Class != classLock && c.Lock.Class != classElection) {
			d.fail("unlock without a session or with unknown class %d", c.Lock.Class)
		}
	default:
		return command{}, fmt.Errorf("%w: unknown type %d", errBadCommand, c.Type)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return command{}, d.err
	}
	return c, nil
}

// decoder consumes b front to back and remembers the first error; after an
// error every read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errBadCommand}, args...)...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string into a fresh slice (nil when
// empty).
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("length %d exceeds the command size", n)
	}
	v := d.take(int(n))
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("length %d exceeds the command size", n)
	}
	return string(d.take(int(n)))
}

func (d *decoder) op(op *tree.Op, session uint64) {
	op.Kind = tree.OpKind(d.byte())
	flags := d.byte()
	op.Version = d.varint()
	op.TTLMs = d.varint()
	op.Path = d.string()
	op.Data = d.bytes()
	if d.err != nil {
		return
	}
	if op.Kind < tree.OpCreate || op.Kind > tree.OpCheck {
		d.fail("unknown op kind %d", op.Kind)
		return
	}
	if flags&^flagsKnown != 0 {
		d.fail("unknown op flags %#x", flags)
		return
	}
	if flags&flagEphemeral != 0 {
		if session == 0 {
			d.fail("ephemeral op without a session")
			return
		}
		op.Owner = session
	}
	op.Sequential = flags&flagSequential != 0
	op.Container = flags&flagContainer != 0
	op.Recursive = flags&flagRecursive != 0
	op.System = flags&flagSystem != 0
}
