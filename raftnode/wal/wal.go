// Package wal is raft's write-ahead log: the entries and the newest
// HardState and snapshot record of one member, appended to segment files and
// made durable with one fdatasync per Save.
//
// Why not bbolt, which held the log before: a bbolt commit writes the
// touched B-tree pages, fdatasyncs, writes the meta page and fdatasyncs
// again; here a commit of one small entry took about 0.3 ms against 0.06 ms
// for one append and fdatasync of the same bytes. A replicated write waits
// for this twice in a row (leader, then follower), so the log's sync is
// most of a write's latency on a quiet cluster.
//
// Layout: DIR/<seq>.wal, seq a 16-digit hex number counting up from 1.
// Every segment is a sequence of records:
//
//	crc32c  uint32  over everything after it (kind..payload)
//	length  uint32  of kind..payload
//	kind    uint8
//	index   uint64  entry and snapshot records; 0 otherwise
//	term    uint64  entry and snapshot records; 0 otherwise
//	payload []byte  opaque to this package
//
// A segment starts with the state that is current when it is created (the
// newest HardState and snapshot record), and every Open that may write
// starts a new segment, so the segments that remain after older ones are
// deleted replay on their own. The log replays in order: an
// entry at index i replaces every entry at index >= i (raft's truncation of
// a conflicting suffix), a reset snapshot record drops every entry (a
// snapshot received from the leader replaces the log), the last HardState
// wins.
//
// A crash can leave the newest segment's last Save partly written (any of
// its pages, in any order). Nothing of that Save was acknowledged: it was
// not synced. Open truncates the newest segment at its first record that
// does not check out and logs how many bytes it dropped; a bad record in
// any older segment, which was synced whole before the next one was
// created, is corruption (ErrCorrupt).
//
// A WAL is used by one goroutine (raft's); it is not safe for concurrent
// use.
package wal

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors, matched with errors.Is.
var (
	// ErrCorrupt: the log on disk is not what this package wrote.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrFailed: an earlier write or sync failed. A failed fdatasync may
	// have dropped the dirty pages it was asked to write (fsyncgate), so a
	// WAL never writes again after one; the member stops and a restart
	// reads what is really on disk.
	ErrFailed = errors.New("wal: an earlier write failed")
)

const (
	kindEntry    = 1
	kindState    = 2
	kindSnapshot = 3 // the log starts after it; older entries may remain
	kindReset    = 4 // the log is replaced by the snapshot: every entry goes

	headerSize = 4 + 4 + 1 + 8 + 8
	// maxRecord bounds a record's length field, so a torn length cannot
	// make Open allocate gigabytes.
	maxRecord = 1 << 30

	segmentSuffix = ".wal"
	tmpSuffix     = ".tmp"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Entry is one raft log entry: its index and term, and its encoding
// (opaque here).
type Entry struct {
	Index, Term uint64
	Data        []byte
}

// Snapshot is the record of a snapshot: its index and term and its encoded
// metadata (opaque here).
type Snapshot struct {
	Index, Term uint64
	Data        []byte
}

// Options configure a WAL.
type Options struct {
	// SegmentBytes: a segment that reaches this size is closed and a new
	// one started after the next Save. Default 64 MiB.
	SegmentBytes int64
	// NoSync skips fdatasync (tests and benchmarks only: a crash of the
	// machine can lose acknowledged writes).
	NoSync bool
	// BeforeSync, when set (tests), runs before each sync; its error fails
	// the Save as a failed fdatasync would.
	BeforeSync func() error
	// OnSync, when set, is told how long each write and sync took.
	OnSync func(time.Duration)
	// ReadOnly opens without changing anything (CheckDataDir): a torn
	// tail is reported in State.TornBytes instead of truncated, and Save
	// fails.
	ReadOnly bool
	Logger   *slog.Logger
}

// State is what Open replayed.
type State struct {
	HardState []byte    // newest; nil if none was ever saved
	Snapshot  *Snapshot // newest snapshot record; nil if none
	// First and Last are the first and last index of the entries on disk;
	// both 0 if there are none.
	First, Last uint64
	// TornBytes is the size of the unsynced tail a crash left, which a
	// read-only Open skipped (a writable Open truncates it).
	TornBytes int64
}

// loc says where an entry's record is: 24 bytes per entry in memory.
type loc struct {
	off  int64 // of the record's header
	term uint64
	size uint32
	seq  uint32 // of its segment
}

type segment struct {
	seq  uint64
	path string
	f    *os.File
	size int64 // of the records written
	// alloc is how far the file is preallocated: 0 not yet, -1 never (a
	// segment read back from disk, or the filesystem refused).
	alloc int64
}

// WAL is an open log.
type WAL struct {
	dir  string
	opts Options
	log  *slog.Logger

	segs []*segment // oldest first; the last is written
	hs   []byte
	snap *Snapshot
	// locs[i] is the entry at index base+i.
	base     uint64
	locs     []loc
	failed   bool
	torn     int64
	buf      []byte
	unsynced int   // writes not synced yet (the bug_walsynclag control only)
	pend     []loc // Save's locations of the entries it writes
}

// Open replays the log in dir (creating dir and a first segment if there is
// none) and returns it ready to append.
func Open(dir string, opts Options) (*WAL, State, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	w := &WAL{dir: dir, opts: opts, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, State{}, fmt.Errorf("wal: %w", err)
		}
		if err := removeTemp(dir); err != nil {
			return nil, State{}, err
		}
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return nil, State{}, err
	}
	for i, seq := range seqs {
		if i > 0 && seq != seqs[i-1]+1 {
			w.closeFiles()
			return nil, State{}, fmt.Errorf("%w: segment %d follows %d", ErrCorrupt, seq, seqs[i-1])
		}
		if err := w.replaySegment(seq, i == len(seqs)-1); err != nil {
			w.closeFiles()
			return nil, State{}, err
		}
	}
	if !opts.ReadOnly {
		// Appends go to a new segment that starts with the whole current
		// state: a crash may have left the newest one without its header
		// (cut back above), and compaction counts on every segment's.
		next := uint64(1)
		if len(w.segs) > 0 {
			next = w.segs[len(w.segs)-1].seq + 1
		}
		if err := w.newSegment(next); err != nil {
			w.closeFiles()
			return nil, State{}, err
		}
	}
	return w, w.state(), nil
}

// State is the log's current state, as Open would replay it now.
func (w *WAL) State() State { return w.state() }

func (w *WAL) state() State {
	st := State{HardState: w.hs, Snapshot: w.snap, TornBytes: w.torn}
	if len(w.locs) > 0 {
		st.First, st.Last = w.base, w.base+uint64(len(w.locs))-1
	}
	return st
}

// Create writes a log holding st's HardState, snapshot record and ents
// into dir, which must hold no segment yet, atomically: it appears whole
// or not at all (a temp file renamed), so a conversion from another format
// interrupted by a crash is simply done again.
func Create(dir string, hs []byte, snap *Snapshot, ents func(yield func(Entry) error) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if seqs, err := listSegments(dir); err != nil {
		return err
	} else if len(seqs) > 0 {
		return fmt.Errorf("wal: create in %s: a log exists already", dir)
	}
	final := filepath.Join(dir, segmentName(1))
	tmp := final + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	var buf []byte
	flush := func() error {
		_, err := f.Write(buf)
		buf = buf[:0]
		return err
	}
	if hs != nil {
		buf = appendRecord(buf, kindState, 0, 0, hs)
	}
	if snap != nil {
		buf = appendRecord(buf, kindSnapshot, snap.Index, snap.Term, snap.Data)
	}
	err = ents(func(e Entry) error {
		buf = appendRecord(buf, kindEntry, e.Index, e.Term, e.Data)
		if len(buf) >= 1<<20 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: create: %w", err)
	}
	if st, err := os.Stat(final); err == nil {
		noteSynced(final, st.Size())
	}
	return nil
}

func (w *WAL) replaySegment(seq uint64, newest bool) error {
	path := filepath.Join(w.dir, segmentName(seq))
	flag := os.O_RDWR
	if w.opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	seg := &segment{seq: seq, path: path, f: f, alloc: -1} // never written again: a new segment follows
	w.segs = append(w.segs, seg)
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	size := st.Size()
	// Streamed a record at a time: a segment is never in memory whole.
	br := bufio.NewReaderSize(f, 1<<20)
	var buf []byte
	off := int64(0)
	for off < size {
		r, n, rerr := readRecord(br, &buf, size-off)
		if rerr != nil {
			if !newest {
				return fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, path, off, rerr)
			}
			// The newest segment ends in the zeros of its preallocation;
			// only what is not zero was torn.
			torn := size - off
			if errors.Is(rerr, errZeroHeader) {
				if torn, err = nonZeroExtent(f, off, size); err != nil {
					return fmt.Errorf("wal: read %s: %w", path, err)
				}
			}
			if w.opts.ReadOnly {
				w.torn = torn
				break
			}
			if torn > 0 {
				w.log.Warn("dropping the unsynced tail of the log", "segment", path, "offset", off, "bytes", torn, "err", rerr)
			}
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("wal: truncate torn tail of %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("wal: sync %s: %w", path, err)
			}
			noteSynced(path, off)
			break
		}
		if err := w.replayRecord(seg, off, n, r); err != nil {
			return fmt.Errorf("%s at offset %d: %w", path, off, err)
		}
		off += int64(n)
	}
	seg.size = off
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// readRecord reads the next record from br, of the left bytes the file
// still has, into *buf (grown as needed; the record's payload aliases it).
func readRecord(br *bufio.Reader, buf *[]byte, left int64) (record, int, error) {
	if left < 8 {
		return record{}, 0, fmt.Errorf("short header (%d bytes)", left)
	}
	hdr, err := br.Peek(8)
	if err != nil {
		return record{}, 0, fmt.Errorf("read header: %w", err)
	}
	if binary.LittleEndian.Uint64(hdr) == 0 {
		return record{}, 0, errZeroHeader
	}
	n := binary.LittleEndian.Uint32(hdr[4:])
	if n < headerSize-8 || n > maxRecord {
		return record{}, 0, fmt.Errorf("record length %d out of range", n)
	}
	if left-8 < int64(n) {
		return record{}, 0, fmt.Errorf("record of %d bytes cut at %d", n, left-8)
	}
	total := 8 + int(n)
	if cap(*buf) < total {
		*buf = make([]byte, total)
	}
	b := (*buf)[:total]
	if _, err := io.ReadFull(br, b); err != nil {
		return record{}, 0, fmt.Errorf("read record: %w", err)
	}
	return parseRecord(b)
}

// errZeroHeader: where a record should start, the file holds zeros (no
// record is all zeros: its length is at least headerSize-8).
var errZeroHeader = errors.New("zeros where a record header should be")

// nonZeroExtent returns how far past off, up to size, f holds anything but
// zeros.
func nonZeroExtent(f *os.File, off, size int64) (int64, error) {
	buf := make([]byte, 1<<20)
	var extent int64
	for pos := off; pos < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				extent = pos + int64(i) + 1 - off
				break
			}
		}
		pos += int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, err
		}
	}
	return extent, nil
}

type record struct {
	kind        byte
	index, term uint64
	payload     []byte
}

func parseRecord(b []byte) (record, int, error) {
	if len(b) < 8 {
		return record{}, 0, fmt.Errorf("short header (%d bytes)", len(b))
	}
	crc := binary.LittleEndian.Uint32(b)
	n := binary.LittleEndian.Uint32(b[4:])
	if n < headerSize-8 || n > maxRecord {
		return record{}, 0, fmt.Errorf("record length %d out of range", n)
	}
	if uint64(len(b)-8) < uint64(n) {
		return record{}, 0, fmt.Errorf("record of %d bytes cut at %d", n, len(b)-8)
	}
	body := b[8 : 8+n]
	if crc32.Checksum(body, crcTable) != crc {
		return record{}, 0, errors.New("checksum mismatch")
	}
	r := record{
		kind:    body[0],
		index:   binary.LittleEndian.Uint64(body[1:]),
		term:    binary.LittleEndian.Uint64(body[9:]),
		payload: body[17:],
	}
	if r.kind < kindEntry || r.kind > kindReset {
		return record{}, 0, fmt.Errorf("unknown record kind %d", r.kind)
	}
	return r, 8 + int(n), nil
}

func appendRecord(buf []byte, kind byte, index, term uint64, payload []byte) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(headerSize-8+len(payload)))
	buf = append(buf, kind)
	buf = binary.LittleEndian.AppendUint64(buf, index)
	buf = binary.LittleEndian.AppendUint64(buf, term)
	buf = append(buf, payload...)
	binary.LittleEndian.PutUint32(buf[start:], crc32.Checksum(buf[start+8:], crcTable))
	return buf
}

func (w *WAL) replayRecord(seg *segment, off int64, n int, r record) error {
	switch r.kind {
	case kindState:
		w.hs = bytes.Clone(r.payload)
	case kindSnapshot:
		if w.snap == nil || r.index >= w.snap.Index {
			w.snap = &Snapshot{Index: r.index, Term: r.term, Data: bytes.Clone(r.payload)}
		}
	case kindReset:
		w.snap = &Snapshot{Index: r.index, Term: r.term, Data: bytes.Clone(r.payload)}
		w.locs = w.locs[:0]
	case kindEntry:
		if err := w.addLoc(r.index, loc{seq: uint32(seg.seq), off: off, size: uint32(n), term: r.term}); err != nil {
			return err
		}
	}
	return nil
}

// addLoc records entry i's location; i replaces every entry at or after it.
func (w *WAL) addLoc(i uint64, l loc) error {
	switch {
	case i == 0:
		return fmt.Errorf("%w: entry with index 0", ErrCorrupt)
	case len(w.locs) == 0 || i < w.base:
		w.base = i
		w.locs = append(w.locs[:0], l)
	case i <= w.base+uint64(len(w.locs)):
		w.locs = append(w.locs[:i-w.base], l)
	default:
		return fmt.Errorf("%w: entry %d leaves a gap after %d", ErrCorrupt, i, w.base+uint64(len(w.locs))-1)
	}
	return nil
}

// Save appends snap (if not nil), hs (if not nil) and ents, in that order
// (snap first so that the entries that follow a received snapshot survive
// its reset), and makes them durable with one fdatasync. reset says snap replaces the log
// (a snapshot from the leader) rather than only marking where it may be
// compacted.
func (w *WAL) Save(hs []byte, snap *Snapshot, reset bool, ents []Entry) error {
	if w.failed {
		return ErrFailed
	}
	if w.opts.ReadOnly {
		return errors.New("wal: read-only")
	}
	for _, e := range ents {
		if len(e.Data) > maxRecord-(headerSize-8) {
			// Replay would take it for a torn length and cut the log there.
			return fmt.Errorf("wal: entry %d of %d bytes exceeds the record limit of %d", e.Index, len(e.Data), maxRecord-(headerSize-8))
		}
	}
	seg := w.segs[len(w.segs)-1]
	buf := w.buf[:0]
	if snap != nil {
		kind := byte(kindSnapshot)
		if reset {
			kind = kindReset
		}
		buf = appendRecord(buf, kind, snap.Index, snap.Term, snap.Data)
	}
	if hs != nil {
		buf = appendRecord(buf, kindState, 0, 0, hs)
	}
	// Where each entry's record will be, for locs once the write is
	// durable; a reused slice, as the buffer.
	locs := w.pend[:0]
	for _, e := range ents {
		off := seg.size + int64(len(buf))
		buf = appendRecord(buf, kindEntry, e.Index, e.Term, e.Data)
		locs = append(locs, loc{seq: uint32(seg.seq), off: off, size: uint32(seg.size + int64(len(buf)) - off), term: e.Term})
	}
	w.pend = locs
	if cap(buf) <= 1<<20 {
		w.buf = buf // keep a modest buffer; a huge one goes with this Save
	}
	start := time.Now()
	if err := w.write(seg, buf); err != nil {
		return err
	}
	if w.opts.OnSync != nil {
		w.opts.OnSync(time.Since(start))
	}
	seg.size += int64(len(buf))
	if snap != nil {
		if reset {
			w.locs = w.locs[:0]
		}
		if reset || w.snap == nil || snap.Index >= w.snap.Index {
			w.snap = &Snapshot{Index: snap.Index, Term: snap.Term, Data: bytes.Clone(snap.Data)}
		}
	}
	if hs != nil {
		w.hs = bytes.Clone(hs)
	}
	for k, l := range locs {
		if err := w.addLoc(ents[k].Index, l); err != nil {
			w.failed = true
			return err
		}
	}
	if seg.size >= w.opts.SegmentBytes {
		if err := w.newSegment(seg.seq + 1); err != nil {
			return err
		}
	}
	return nil
}

func (w *WAL) write(seg *segment, buf []byte) error {
	w.preallocate(seg, seg.size+int64(len(buf)))
	if _, err := seg.f.Write(buf); err != nil {
		w.failed = true
		return fmt.Errorf("wal: write %s: %w", seg.path, err)
	}
	if syncLags {
		if w.unsynced++; w.unsynced < syncLagWrites {
			return nil
		}
		w.unsynced = 0
	}
	return w.sync(seg, seg.size+int64(len(buf)))
}

// preallocChunk is how far ahead of its records a segment is preallocated.
const preallocChunk = 4 << 20

// preallocate makes sure seg's file is allocated up to end, a chunk at a
// time and never past SegmentBytes (so only the newest segment has a zero
// tail). An append within the allocation does not change the file's size,
// so its fdatasync commits no inode change to the filesystem's journal:
// measured here, 0.25 against 0.215 ms with three logs syncing at once.
// It is only an optimization: when the filesystem refuses (no fallocate,
// or no space left, which the write itself will then report), the segment
// grows by appends as before.
func (w *WAL) preallocate(seg *segment, end int64) {
	if w.opts.NoSync || seg.alloc < 0 || end <= seg.alloc || seg.alloc >= w.opts.SegmentBytes {
		return
	}
	to := min(w.opts.SegmentBytes, end+preallocChunk)
	if err := fallocate(seg.f, seg.alloc, to-seg.alloc); err != nil {
		w.log.Debug("cannot preallocate the log", "segment", seg.path, "err", err)
		seg.alloc = -1
		return
	}
	seg.alloc = to
}

// sync makes seg durable up to size, everything written to it so far.
func (w *WAL) sync(seg *segment, size int64) error {
	if w.opts.BeforeSync != nil {
		if err := w.opts.BeforeSync(); err != nil {
			w.failed = true
			return fmt.Errorf("wal: sync %s: %w", seg.path, err)
		}
	}
	if w.opts.NoSync {
		return nil
	}
	if !powered(seg.path) {
		w.failed = true
		return errPowerCut
	}
	if duringSync != nil {
		duringSync()
	}
	if err := fdatasync(seg.f); err != nil {
		w.failed = true
		return fmt.Errorf("wal: sync %s: %w", seg.path, err)
	}
	noteSynced(seg.path, size)
	return nil
}

// newSegment starts segment seq with the current state, durable (file and
// directory entry) before anything is appended to it.
func (w *WAL) newSegment(seq uint64) error {
	path := filepath.Join(w.dir, segmentName(seq))
	if !w.opts.NoSync && !powered(path) {
		w.failed = true
		return errPowerCut
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		w.failed = true
		return fmt.Errorf("wal: create segment: %w", err)
	}
	seg := &segment{seq: seq, path: path, f: f}
	var buf []byte
	if w.hs != nil {
		buf = appendRecord(buf, kindState, 0, 0, w.hs)
	}
	if w.snap != nil {
		buf = appendRecord(buf, kindSnapshot, w.snap.Index, w.snap.Term, w.snap.Data)
	}
	if len(buf) > 0 {
		if err := w.write(seg, buf); err != nil {
			f.Close()
			return err
		}
	} else if !w.opts.NoSync {
		if err := f.Sync(); err != nil {
			w.failed = true
			f.Close()
			return fmt.Errorf("wal: sync segment: %w", err)
		}
		noteSynced(path, 0)
	}
	if !w.opts.NoSync {
		if err := syncDir(w.dir); err != nil {
			w.failed = true
			f.Close()
			return fmt.Errorf("wal: %w", err)
		}
	}
	seg.size = int64(len(buf))
	w.segs = append(w.segs, seg)
	return nil
}

// Term returns the term of entry i, which must be on disk.
func (w *WAL) Term(i uint64) (uint64, error) {
	l, err := w.loc(i)
	if err != nil {
		return 0, err
	}
	return l.term, nil
}

func (w *WAL) loc(i uint64) (loc, error) {
	if len(w.locs) == 0 || i < w.base || i >= w.base+uint64(len(w.locs)) {
		return loc{}, fmt.Errorf("%w: entry %d is not in the log (%d entries from %d)", ErrCorrupt, i, len(w.locs), w.base)
	}
	return w.locs[i-w.base], nil
}

// Entries calls fn with the entries [lo, hi) in order, until fn returns
// false or an error. The Data handed to fn is its own copy.
func (w *WAL) Entries(lo, hi uint64, fn func(Entry) (bool, error)) error {
	for i := lo; i < hi; {
		first, err := w.loc(i)
		if err != nil {
			return err
		}
		// One read for the run of entries in the same segment (up to 1 MiB
		// past the first, which may be larger on its own).
		j := i + 1
		end := first.off + int64(first.size)
		for j < hi {
			l, err := w.loc(j)
			if err != nil || l.seq != first.seq || l.off != end || end-first.off >= 1<<20 {
				break
			}
			end += int64(l.size)
			j++
		}
		seg := w.segment(first.seq)
		if seg == nil {
			return fmt.Errorf("%w: entry %d is in segment %d, which is gone", ErrCorrupt, i, first.seq)
		}
		buf := make([]byte, end-first.off)
		if _, err := seg.f.ReadAt(buf, first.off); err != nil {
			return fmt.Errorf("wal: read %s at %d: %w", seg.path, first.off, err)
		}
		for k := i; k < j; k++ {
			r, n, err := parseRecord(buf)
			if err != nil || r.kind != kindEntry || r.index != k {
				return fmt.Errorf("%w: entry %d in %s does not check out (%v)", ErrCorrupt, k, seg.path, err)
			}
			more, err := fn(Entry{Index: r.index, Term: r.term, Data: r.payload})
			if err != nil || !more {
				return err
			}
			buf = buf[n:]
		}
		i = j
	}
	return nil
}

// Compact deletes the segments holding only entries at or below index
// (never the newest one, nor one that holds the newest state record alone).
// The caller has saved a snapshot record at or above index first.
func (w *WAL) Compact(index uint64) error {
	if w.opts.ReadOnly {
		return errors.New("wal: read-only")
	}
	// The oldest segments go while every live entry in them is at or below
	// index (one with none, a restart's header alone, goes too).
	drop := 0
	for k := 0; k < len(w.segs)-1; k++ {
		if last, ok := w.lastIndexIn(w.segs[k]); ok && last > index {
			break
		}
		drop = k + 1
	}
	if drop == 0 {
		return nil
	}
	for _, seg := range w.segs[:drop] {
		seg.f.Close()
		if err := os.Remove(seg.path); err != nil {
			w.failed = true
			return fmt.Errorf("wal: remove %s: %w", seg.path, err)
		}
		noteRemoved(seg.path)
	}
	gone := w.segs[:drop]
	w.segs = slices.Clone(w.segs[drop:])
	// Entries of dropped segments are no longer readable.
	k := 0
	for k < len(w.locs) && w.locs[k].seq <= uint32(gone[len(gone)-1].seq) {
		k++
	}
	w.base += uint64(k)
	w.locs = slices.Clone(w.locs[k:])
	if !w.opts.NoSync {
		if err := syncDir(w.dir); err != nil {
			w.failed = true
			return fmt.Errorf("wal: %w", err)
		}
	}
	return nil
}

// lastIndexIn is the index of the last live entry in seg, if it has one.
// Along the log the entries' segments never go down (an entry that
// replaces others is written later), so a binary search finds it.
func (w *WAL) lastIndexIn(seg *segment) (uint64, bool) {
	seq := uint32(seg.seq)
	// The first entry in a later segment; the one before it is seg's last
	// if it is in seg.
	k, _ := slices.BinarySearchFunc(w.locs, seq+1, func(l loc, s uint32) int { return cmp.Compare(l.seq, s) })
	if k == 0 || w.locs[k-1].seq != seq {
		return 0, false
	}
	return w.base + uint64(k-1), true
}

// segment returns the open segment seq, or nil.
func (w *WAL) segment(seq uint32) *segment {
	if len(w.segs) == 0 {
		return nil
	}
	i := int64(seq) - int64(w.segs[0].seq)
	if i < 0 || i >= int64(len(w.segs)) {
		return nil
	}
	return w.segs[i]
}

// Segments is how many segment files the log has.
func (w *WAL) Segments() int { return len(w.segs) }

// Close closes the files. Everything Save returned for is durable already.
func (w *WAL) Close() error { return w.closeFiles() }

func (w *WAL) closeFiles() error {
	var errs []error
	for _, s := range w.segs {
		if s.f != nil {
			if err := s.f.Close(); err != nil {
				errs = append(errs, err)
			}
			s.f = nil
		}
	}
	return errors.Join(errs...)
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentSuffix) }

func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), segmentSuffix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 || seq == 0 {
			return nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, de.Name())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Exists reports whether dir holds a log.
func Exists(dir string) (bool, error) {
	seqs, err := listSegments(dir)
	return len(seqs) > 0, err
}

func removeTemp(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), tmpSuffix) {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				return fmt.Errorf("wal: %w", err)
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
