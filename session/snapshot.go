package session

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Snapshot format, version 1. Integers are varints (encoding/binary):
//
//	header:  magic "ARBSESS\n" (8 bytes), uvarint format version (1), uvarint count
//	session: uvarint id, varint timeout ms, 32-byte secret hash, varint created ms
//	         (count times, ids strictly increasing)
//	trailer: CRC-32C (Castagnoli) of every byte before it, 4 bytes little-endian
const (
	snapMagic   = "ARBSESS\n"
	snapVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot writes the table to w; the same table always gives the same
// bytes.
func (t *Table) WriteSnapshot(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	buf := []byte(snapMagic)
	buf = binary.AppendUvarint(buf, snapVersion)
	buf = binary.AppendUvarint(buf, uint64(len(t.sessions)))
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	for _, id := range t.IDs() {
		s := t.sessions[id]
		buf = binary.AppendUvarint(buf[:0], s.ID)
		buf = binary.AppendVarint(buf, s.TimeoutMs)
		buf = append(buf, s.SecretHash[:]...)
		buf = binary.AppendVarint(buf, s.CreatedMs)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

// ReadSnapshot reads a table written by WriteSnapshot. Any damage gives an
// error wrapping ErrBadSnapshot.
func ReadSnapshot(r io.Reader) (*Table, error) {
	d := decoder{r: bufio.NewReader(r)}
	t, err := d.table()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return t, nil
}

// decoder reads through a running CRC-32C.
type decoder struct {
	r   *bufio.Reader
	crc uint32
}

func (d *decoder) ReadByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err == nil {
		d.crc = crc32.Update(d.crc, castagnoli, []byte{b})
	}
	return b, err
}

func (d *decoder) full(b []byte) error {
	if _, err := io.ReadFull(d.r, b); err != nil {
		return err
	}
	d.crc = crc32.Update(d.crc, castagnoli, b)
	return nil
}

func (d *decoder) table() (*Table, error) {
	var magic [len(snapMagic)]byte
	if err := d.full(magic[:]); err != nil {
		return nil, err
	}
	if !bytes.Equal(magic[:], []byte(snapMagic)) {
		return nil, fmt.Errorf("bad magic %q", magic)
	}
	version, err := binary.ReadUvarint(d)
	if err != nil {
		return nil, err
	}
	if version != snapVersion {
		return nil, fmt.Errorf("unknown format version %d", version)
	}
	count, err := binary.ReadUvarint(d)
	if err != nil {
		return nil, err
	}
	// The count is untrusted: do not size the map by it beyond a little.
	t := &Table{sessions: make(map[uint64]Session, min(count, 1024))}
	var prev uint64
	for i := range count {
		var s Session
		if s.ID, err = binary.ReadUvarint(d); err != nil {
			return nil, err
		}
		if i > 0 && s.ID <= prev {
			return nil, fmt.Errorf("session %016x out of order", s.ID)
		}
		prev = s.ID
		if s.TimeoutMs, err = binary.ReadVarint(d); err != nil {
			return nil, err
		}
		if err := d.full(s.SecretHash[:]); err != nil {
			return nil, err
		}
		if s.CreatedMs, err = binary.ReadVarint(d); err != nil {
			return nil, err
		}
		t.sessions[s.ID] = s
	}
	sum := d.crc
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
