package raftnode

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
)

// Entry is a committed log entry handed to the state machine. Data is nil
// for raft's own entries (empty entries of a new leader, conf changes), which
// are still delivered so the state machine's applied index keeps pace with
// the log. Data is only valid during the Apply call.
type Entry struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// StateMachine is what raftnode drives. All methods are called from one
// goroutine, never concurrently.
type StateMachine interface {
	// Apply applies committed entries in log order. An error is fatal: the
	// node stops (Run returns it) rather than let members' states drift
	// apart, as when a command cannot be decoded by this member's version.
	Apply(entries []Entry) error
	// Snapshot writes the state as of the last applied entry. It runs on
	// the raft goroutine, which waits for it (no ticks, no applies): a
	// state machine with a large state implements SnapshotViewer instead.
	Snapshot(w io.Writer) error
	// Restore replaces the whole state with a snapshot taken at index. r
	// streams the payload from the snapshot file, whose size and checksum
	// raftnode verified before the call: raftnode never holds the file in
	// memory, and Restore need not buffer it to be safe from a torn file.
	Restore(index uint64, r io.Reader) error
}

// SnapshotViewer is implemented by a StateMachine that can take a
// point-in-time view of its state cheaply. raftnode calls SnapshotView on
// the raft goroutine, between Apply calls, and then runs the view's WriteTo
// on a goroutine of its own while Apply (and Restore) go on. WriteTo must
// write exactly the state as of the last entry applied before SnapshotView,
// in the format Restore reads, whatever Apply or Restore do meanwhile. An
// error from either is fatal (Run returns it). WriteTo's writer fails once
// Run is stopping, and WriteTo should then return promptly: Run waits for
// it before returning. At most one view is being written at a time.
type SnapshotViewer interface {
	SnapshotView() (io.WriterTo, error)
}

// Peer names a member of the initial cluster.
type Peer struct {
	Name    string
	PeerURL string // host:port
}

// Config of a node.
type Config struct {
	Name              string
	DataDir           string
	ListenPeerAddr    string // host:port to listen on for raft traffic
	AdvertisePeerAddr string // what the others dial; default ListenPeerAddr
	InitialCluster    []Peer // bootstrap; ignored when the data dir holds state
	Join              bool   // start empty and wait to be added by the cluster
	// FreshID gives a member that starts empty with Join an id of its own
	// incarnation (kept in the data dir) instead of the one its name
	// gives, so that a name whose member was removed can join again.
	FreshID         bool
	SnapshotEntries uint64        // take a snapshot and compact every N applied entries (default 100000)
	TickInterval    time.Duration // default 100ms
	ElectionTicks   int           // default 10
	HeartbeatTicks  int           // default 1
	NoSync          bool          // tests only
	Logger          *slog.Logger

	// Added by the raftnode implementation (all optional).
	ClusterToken       string       // peers presenting a different token are rejected (default "arbor")
	CompactKeepEntries uint64       // entries kept behind a snapshot for slow followers (default min(5000, SnapshotEntries))
	PeerListener       net.Listener // pre-bound peer listener, used instead of ListenPeerAddr (tests bind 127.0.0.1:0)
	Transport          Transport    // nil means the framed TCP transport on ListenPeerAddr
	Metrics            *Metrics     // nil means no metrics
	// SnapshotBytes also takes a snapshot (and compacts) once this many
	// bytes of log entries were applied since the last one (default 256 MiB).
	SnapshotBytes uint64
	// MaxLogCacheBytes bounds the raft log entries held in memory: the
	// newest entries up to this size; raft reads older ones from the
	// write-ahead log (default 64 MiB). Committed entries are handed to
	// Apply in batches of at most this size (and 64 MiB).
	MaxLogCacheBytes uint64
	// LogSegmentBytes is the size at which the write-ahead log starts a new
	// segment file (default 64 MiB). Compaction deletes whole segments, so
	// a member keeps up to one segment of entries older than its snapshot.
	LogSegmentBytes int64
}

// Errors.
var (
	ErrStopped         = errors.New("raftnode: stopped")
	ErrProposalDropped = errors.New("raftnode: proposal dropped (no leader)")
	ErrNoLeader        = errors.New("raftnode: no leader")
)

// MemberInfo is one member as raft knows it.
type MemberInfo struct {
	ID      uint64
	Name    string
	PeerURL string
	Learner bool
	Leader  bool
	Alive   bool // recently heard from (self is always alive)
}

// Status is a point-in-time view for health checks and metrics.
type Status struct {
	ID, Leader            uint64
	Term, Commit, Applied uint64
	IsLeader              bool
	LeaderChanges         uint64
	PendingProposals      int
	SnapshotIndex         uint64 // of the newest durable snapshot raft's log is compacted to
	LogCacheBytes         uint64 // log entries held in memory (at most Config.MaxLogCacheBytes)
}
