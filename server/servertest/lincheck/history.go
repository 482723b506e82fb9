package lincheck

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// Kind is the kind of a recorded operation.
type Kind string

// Kinds of operation.
const (
	KindCreate Kind = "create" // Path, Data, Ephemeral
	KindSet    Kind = "set"    // Path, Data, Version (AnyVersion: unconditional)
	KindDelete Kind = "delete" // Path, Version
	KindCAS    Kind = "cas"    // multi [check(Path, Version), set(Path, Data, any)]
	KindGet    Kind = "get"    // Path, Local
	KindClose  Kind = "close"  // Session: the session's close
)

// AnyVersion as a Version means "any version" (the protocol's -1).
const AnyVersion int64 = -1

// Input is what an operation asked for.
type Input struct {
	Kind      Kind
	Path      string
	Data      string
	Version   int64
	Ephemeral bool
	Local     bool
	Session   string // the session the operation ran in
	Member    string // the member the connection was talking to (for reports only)
}

// Output is how an operation ended.
type Output struct {
	// Unknown: the outcome is indeterminate; nothing else is meaningful.
	Unknown bool
	// Err is the protocol error code; empty on success.
	Err wire.Code
	// Zxid of the response (0 when the answer carried none).
	Zxid uint64
	// Version of the node after a successful create, set or CAS; seen by a
	// successful get.
	Version int64
	// Data and Owner (the ephemeral owner session, "" if none) seen by a
	// successful get.
	Data  string
	Owner string
}

// Op is one completed operation of a history. Call and Return are
// nanoseconds since the Recorder was made; Return of an Unknown operation is
// after every other event of the history.
type Op struct {
	ID     int
	Client int // connection (session) number from Recorder.NewClient
	Input  Input
	Output Output
	Call   int64
	Return int64
}

func (o Op) String() string {
	s := fmt.Sprintf("#%d c%d %s %s", o.ID, o.Client, o.Input.Kind, o.Input.Path)
	switch o.Input.Kind {
	case KindCreate:
		s += fmt.Sprintf(" %q eph=%v", o.Input.Data, o.Input.Ephemeral)
	case KindSet, KindCAS:
		s += fmt.Sprintf(" %q v=%d", o.Input.Data, o.Input.Version)
	case KindDelete:
		s += fmt.Sprintf(" v=%d", o.Input.Version)
	case KindGet:
		if o.Input.Local {
			s += " local"
		}
	case KindClose:
		s += " session=" + o.Input.Session
	}
	return s + " -> " + o.Output.String()
}

func (o Output) String() string {
	switch {
	case o.Unknown:
		return "unknown"
	case o.Err != "":
		return string(o.Err)
	default:
		return fmt.Sprintf("ok v=%d %q owner=%q zxid=%d", o.Version, o.Data, o.Owner, o.Zxid)
	}
}

// Recorder collects a history. It is safe for concurrent use.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	clients int
	ops     []Op
	open    map[int]bool // called, not yet returned
}

// NewRecorder starts an empty history; timestamps count from now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), open: map[int]bool{}}
}

// NewClient returns a fresh connection number. Use one per session: a
// client that redials gets a new one.
func (r *Recorder) NewClient() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients++
	return r.clients - 1
}

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Call records the invocation of an operation and returns its id for
// Return or Discard. An operation never returned counts as Unknown.
func (r *Recorder) Call(client int, in Input) int {
	t := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	id := len(r.ops)
	r.ops = append(r.ops, Op{ID: id, Client: client, Input: in, Call: t, Return: -1})
	r.open[id] = true
	return id
}

// Return records how operation id ended.
func (r *Recorder) Return(id int, out Output) {
	t := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[id] {
		return
	}
	delete(r.open, id)
	r.ops[id].Output = out
	if !out.Unknown {
		r.ops[id].Return = t
	}
}

// Discard drops operation id from the history: it observed and changed
// nothing (a read that failed, a request never sent).
func (r *Recorder) Discard(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[id] {
		return
	}
	delete(r.open, id)
	r.ops[id].Return = -2
}

// History returns the operations recorded so far, in call order. Unknown
// and unreturned operations get a return time after every other event (the
// outcome is unknown until the end of the history).
func (r *Recorder) History() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.now()
	for _, o := range r.ops {
		end = max(end, o.Return)
	}
	out := make([]Op, 0, len(r.ops))
	for _, o := range r.ops {
		switch {
		case o.Return == -2:
			continue
		case r.open[o.ID]:
			o.Output = Output{Unknown: true}
			o.Return = end + 1
		case o.Output.Unknown:
			o.Return = end + 1
		}
		out = append(out, o)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// Stats counts a history's operations.
type Stats struct {
	Ops, Unknown, Failed int
	ByKind               map[Kind]int
}

// Count returns the figures of a history.
func Count(h []Op) Stats {
	s := Stats{ByKind: map[Kind]int{}}
	for _, o := range h {
		s.Ops++
		s.ByKind[o.Input.Kind]++
		if o.Output.Unknown {
			s.Unknown++
		} else if o.Output.Err != "" {
			s.Failed++
		}
	}
	return s
}
