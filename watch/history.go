package watch

import (
	"errors"
	"fmt"
	"sort"

	"github.com/arbor-db/arbor/tree"
)

// ErrTooOld is returned by Since for a zxid older than the history: the
// changes right after it are no longer held.
var ErrTooOld = errors.New("watch: zxid is older than the history")

// ErrOrder is returned by Record for events whose zxids go backwards.
var ErrOrder = errors.New("watch: history events out of zxid order")

// History holds the most recent changes, in zxid order, bounded by a count
// of events and by their bytes. It always holds every change after Floor:
// it forgets whole zxids, oldest first, and Floor rises to the last zxid it
// forgot. It is not safe for concurrent use.
type History struct {
	maxEvents int
	maxBytes  int

	evs   []tree.Event // evs[start:] are held, zxids ascending
	start int
	bytes int
	floor uint64
}

// eventOverhead is what one held event costs besides its path and data:
// the tree.Event itself and its slice slot, roughly.
const eventOverhead = 64

// NewHistory returns an empty history that holds at most maxEvents events
// and maxBytes bytes (paths, data and a per-event overhead), whose changes
// begin after floor.
func NewHistory(maxEvents, maxBytes int, floor uint64) *History {
	return &History{maxEvents: max(maxEvents, 0), maxBytes: max(maxBytes, 0), floor: floor}
}

// Floor returns the zxid after which the history holds every change.
func (h *History) Floor() uint64 { return h.floor }

// Len returns the number of events held.
func (h *History) Len() int { return len(h.evs) - h.start }

// Bytes returns the bytes held, as the bound counts them.
func (h *History) Bytes() int { return h.bytes }

// Reset forgets everything: the history begins again after floor (a state
// machine restored from a snapshot at that index).
func (h *History) Reset(floor uint64) {
	clear(h.evs)
	h.evs, h.start, h.bytes, h.floor = h.evs[:0], 0, 0, floor
}

func cost(ev *tree.Event) int { return eventOverhead + len(ev.Path) + len(ev.Data) }

// Record appends the events of one or more zxids, in zxid order, none below
// a zxid recorded before and all above the floor. It then forgets the
// oldest zxids until the bounds hold again, possibly these events too.
// Events out of order are refused with ErrOrder and nothing is recorded;
// the caller should then Reset, so that resumes resync rather than miss a
// change.
func (h *History) Record(events []tree.Event) error {
	last := h.floor
	if n := len(h.evs); n > h.start {
		last = h.evs[n-1].Zxid
	}
	for i := range events {
		z := events[i].Zxid
		if z < last || z <= h.floor {
			return fmt.Errorf("%w: zxid %d after %d (floor %d)", ErrOrder, z, last, h.floor)
		}
		last = z
	}
	for i := range events {
		ev := &events[i]
		h.evs = append(h.evs, *ev)
		h.bytes += cost(ev)
	}
	for h.Len() > h.maxEvents || h.bytes > h.maxBytes {
		h.forgetOldest()
	}
	// Reuse the front of the slice once half of it is forgotten, so memory
	// stays proportional to what is held.
	if h.start > 0 && h.start >= len(h.evs)/2 {
		n := copy(h.evs, h.evs[h.start:])
		clear(h.evs[n:])
		h.evs, h.start = h.evs[:n], 0
	}
	return nil
}

// forgetOldest forgets every event of the oldest zxid held.
func (h *History) forgetOldest() {
	z := h.evs[h.start].Zxid
	for h.start < len(h.evs) && h.evs[h.start].Zxid == z {
		h.bytes -= cost(&h.evs[h.start])
		h.evs[h.start] = tree.Event{}
		h.start++
	}
	h.floor = z
}

// Since returns the changes after zxid that a persistent watch of spec
// reports, in order, as that watch would have reported them live (the
// Data of deleted and children events dropped). It returns ErrTooOld when
// zxid is below Floor. The data slices are the tree's: do not modify them.
func (h *History) Since(zxid uint64, spec Spec) ([]tree.Event, error) {
	if zxid < h.floor {
		return nil, fmt.Errorf("%w: the history begins after zxid %d, asked for changes after %d", ErrTooOld, h.floor, zxid)
	}
	held := h.evs[h.start:]
	i := sort.Search(len(held), func(i int) bool { return held[i].Zxid > zxid })
	var out []tree.Event
	for _, ev := range held[i:] {
		if spec.Match(ev) {
			out = append(out, forWatch(spec.Kind, ev))
		}
	}
	return out, nil
}
