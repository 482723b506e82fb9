package tree

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"strings"
)

// Snapshot format, version 1. All integers are varints (encoding/binary):
// u = unsigned (Uvarint), s = signed (Varint).
//
//	header:  magic "ARBTREE\n" (8 bytes), u format version (1)
//	node:    u len(name), name                 (root: empty name)
//	         u czxid, u mzxid, u pzxid
//	         s ctime, s mtime
//	         s version, s cversion
//	         u ephemeral owner
//	         byte flags (bit 0: container, bit 1: TTL follows)
//	         [s ttl ms]
//	         u len(data), data
//	         u number of children, then each child node, in name order
//	trailer: CRC-32C (Castagnoli) of every byte before it, 4 bytes little-endian
//
// Nodes appear in preorder starting at the root, so the same tree always
// encodes to the same bytes. DataLength and NumChildren are derived.
const (
	snapMagic   = "ARBTREE\n"
	snapVersion = 1

	flagContainer = 1 << 0
	flagTTL       = 1 << 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot writes the whole tree to w in the format above. It streams:
// memory use does not grow with the tree.
func (t *Tree) WriteSnapshot(w io.Writer) error { return writeSnapshot(t.root, w) }

// writeSnapshot writes the tree under root.
func writeSnapshot(root *node, w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	e := snapEncoder{w: bw}
	e.string(snapMagic)
	e.uvarint(snapVersion)
	e.node(root)
	if e.err != nil {
		return e.err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

type snapEncoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *snapEncoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *snapEncoder) string(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *snapEncoder) byte(b byte) {
	if e.err == nil {
		e.err = e.w.WriteByte(b)
	}
}

func (e *snapEncoder) uvarint(v uint64) { e.bytes(binary.AppendUvarint(e.buf[:0], v)) }
func (e *snapEncoder) varint(v int64)   { e.bytes(binary.AppendVarint(e.buf[:0], v)) }

func (e *snapEncoder) node(n *node) {
	e.uvarint(uint64(len(n.name)))
	e.string(n.name)
	e.uvarint(n.czxid)
	e.uvarint(n.mzxid)
	e.uvarint(n.pzxid)
	e.varint(n.ctime)
	e.varint(n.mtime)
	e.varint(int64(n.version))
	e.varint(int64(n.cversion))
	e.uvarint(n.owner)
	var flags byte
	if n.container {
		flags |= flagContainer
	}
	if n.ttlMs != 0 {
		flags |= flagTTL
	}
	e.byte(flags)
	if n.ttlMs != 0 {
		e.varint(n.ttlMs)
	}
	e.uvarint(uint64(len(n.data)))
	e.bytes(n.data)
	e.uvarint(uint64(n.numChildren()))
	for _, chunk := range n.kids {
		for _, c := range chunk {
			if e.err != nil {
				return
			}
			e.node(c)
		}
	}
}

// ReadSnapshot reads a tree written by WriteSnapshot. Any damage (bad magic,
// unknown version, truncation, checksum mismatch, lengths over the limits,
// invalid names, unsorted children, trailing bytes) gives an error wrapping
// ErrBadSnapshot. Lengths are checked before anything is allocated for them.
func ReadSnapshot(r io.Reader) (*Tree, error) {
	d := snapDecoder{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(castagnoli)}
	t, err := d.tree()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return t, nil
}

type snapDecoder struct {
	r   *bufio.Reader
	crc hash.Hash32
	one [1]byte
}

// ReadByte lets binary.ReadUvarint read through the checksum.
func (d *snapDecoder) ReadByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err == nil {
		d.one[0] = b
		d.crc.Write(d.one[:])
	}
	return b, err
}

func (d *snapDecoder) read(n uint64, limit uint64, what string) ([]byte, error) {
	if n > limit {
		return nil, fmt.Errorf("%s of %d bytes is over %d", what, n, limit)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, err
	}
	d.crc.Write(b)
	return b, nil
}

func (d *snapDecoder) tree() (*Tree, error) {
	magic, err := d.read(uint64(len(snapMagic)), uint64(len(snapMagic)), "magic")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(magic, []byte(snapMagic)) {
		return nil, fmt.Errorf("bad magic %q", magic)
	}
	version, err := binary.ReadUvarint(d)
	if err != nil {
		return nil, err
	}
	if version != snapVersion {
		return nil, fmt.Errorf("unknown format version %d", version)
	}
	t := newEmpty()
	if t.root, err = d.node(t, "", nil); err != nil {
		return nil, err
	}
	sum := d.crc.Sum32()
	var trailer [4]byte
	if _, err := io.ReadFull(d.r, trailer[:]); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint32(trailer[:]); got != sum {
		return nil, fmt.Errorf("checksum %#08x, want %#08x", got, sum)
	}
	if _, err := d.r.ReadByte(); err != io.EOF {
		return nil, errors.New("trailing bytes after checksum")
	}
	return t, nil
}

// node reads one node and its subtree. parentPath is "" for the root; prev
// is the previous sibling, whose name this one must sort after.
func (d *snapDecoder) node(t *Tree, parentPath string, prev *node) (*node, error) {
	nameLen, err := binary.ReadUvarint(d)
	if err != nil {
		return nil, err
	}
	name, err := d.read(nameLen, MaxPath, "name")
	if err != nil {
		return nil, err
	}
	n := &node{name: string(name)}
	p := "/"
	if parentPath == "" {
		if n.name != "" {
			return nil, fmt.Errorf("root has name %q", n.name)
		}
	} else {
		p = joinPath(parentPath, n.name)
		if n.name == "" || strings.IndexByte(n.name, '/') >= 0 {
			return nil, fmt.Errorf("bad name %q under %s", n.name, parentPath)
		}
		if err := ValidatePath(p, MaxPath); err != nil {
			return nil, err
		}
		if prev != nil && n.name <= prev.name {
			return nil, fmt.Errorf("%s: children out of order", p)
		}
	}
	if err := d.stat(p, n); err != nil {
		return nil, err
	}
	if p == "/" && n.owner != 0 {
		return nil, errors.New("root is ephemeral")
	}
	dataLen, err := binary.ReadUvarint(d)
	if err != nil {
		return nil, err
	}
	if n.data, err = d.read(dataLen, MaxData, "data of "+p); err != nil {
		return nil, err
	}
	numChildren, err := binary.ReadUvarint(d)
	if err != nil {
		return nil, err
	}
	if numChildren > 0 && n.owner != 0 {
		return nil, fmt.Errorf("%s: ephemeral node has children", p)
	}
	if numChildren > math.MaxInt32 {
		return nil, fmt.Errorf("%s: %d children", p, numChildren)
	}
	// The count is untrusted: chunks grow as children actually arrive.
	var last *node
	for range numChildren {
		c, err := d.node(t, p, last)
		if err != nil {
			return nil, err
		}
		n.addLastChild(c)
		last = c
	}
	t.count++
	t.index(p, n)
	return n, nil
}

// stat reads the stored stat fields and flags of the node at p.
func (d *snapDecoder) stat(p string, n *node) error {
	var err error
	if n.czxid, err = binary.ReadUvarint(d); err != nil {
		return err
	}
	if n.mzxid, err = binary.ReadUvarint(d); err != nil {
		return err
	}
	if n.pzxid, err = binary.ReadUvarint(d); err != nil {
		return err
	}
	if n.ctime, err = binary.ReadVarint(d); err != nil {
		return err
	}
	if n.mtime, err = binary.ReadVarint(d); err != nil {
		return err
	}
	if n.version, err = d.int32("version"); err != nil {
		return err
	}
	if n.cversion, err = d.int32("cversion"); err != nil {
		return err
	}
	if n.owner, err = binary.ReadUvarint(d); err != nil {
		return err
	}
	flags, err := d.ReadByte()
	if err != nil {
		return err
	}
	if flags&^(flagContainer|flagTTL) != 0 {
		return fmt.Errorf("%s: unknown flags %#x", p, flags)
	}
	n.container = flags&flagContainer != 0
	if flags&flagTTL != 0 {
		if n.ttlMs, err = binary.ReadVarint(d); err != nil {
			return err
		}
		if n.ttlMs == 0 {
			return fmt.Errorf("%s: TTL flag with zero TTL", p)
		}
	}
	return nil
}

func (d *snapDecoder) int32(what string) (int32, error) {
	v, err := binary.ReadVarint(d)
	if err != nil {
		return 0, err
	}
	if v != int64(int32(v)) {
		return 0, fmt.Errorf("%s %d out of range", what, v)
	}
	return int32(v), nil
}
