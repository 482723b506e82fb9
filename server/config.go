package server

import (
	"log/slog"
	"net"
	"time"

	"github.com/arbor-db/arbor/raftnode"
)

// Peer is one member of the initial cluster: NAME=PEERHOST:PORT.
type Peer struct {
	Name    string
	PeerURL string
}

// Config is everything a member needs to run. The zero values of the
// optional fields mean the documented defaults.
type Config struct {
	Name                string // member name (required)
	DataDir             string // required
	ClientAddr          string // WebSocket + HTTP listen address; default 127.0.0.1:7400
	PeerAddr            string // raft listen address; default 127.0.0.1:7401
	AdvertiseClientAddr string // default ClientAddr
	AdvertisePeerAddr   string // default PeerAddr
	InitialCluster      []Peer // bootstrap a new cluster; empty with no Join = single-member cluster of itself

	// GossipAddr is the memberlist address (TCP and UDP); empty: no gossip
	// (the CLI's default is 127.0.0.1:7402). AdvertiseGossipAddr defaults
	// to it. GossipKey (16, 24 or 32 bytes) encrypts and authenticates
	// gossip.
	GossipAddr, AdvertiseGossipAddr string
	GossipKey                       []byte
	// Join: gossip addresses of a running cluster. A member with an empty
	// data dir and Join set starts empty and waits for the leader to add it
	// (as a learner, promoted to voter once caught up; with Learner it
	// stays a learner).
	Join    []string
	Learner bool

	MaxFrameBytes int   // default 4 MiB
	MaxDataBytes  int   // default 1 MiB
	MaxPathBytes  int   // default 4096
	MinSessionMs  int64 // default 2000
	MaxSessionMs  int64 // default 60000

	SnapshotEntries uint64        // default 100000
	RequestTimeout  time.Duration // default 5s: how long a write or linearizable read may wait
	TickInterval    time.Duration // raft tick; default 50ms (election timeout 10 ticks)

	Logger *slog.Logger // default slog.Default()

	// OnReady, when set, is called once the client listener is bound, with
	// its real address (useful with port 0 in tests).
	OnReady func(clientAddr string)

	// Added by the server implementation (all optional).

	// ClientListener and PeerListener, when set, are used instead of
	// listening on ClientAddr and PeerAddr (tests bind 127.0.0.1:0 and pass
	// the listeners in, so no port can be taken in between). Run closes them.
	ClientListener net.Listener
	PeerListener   net.Listener

	MaxConnections int // open client connections (a WebSocket upgrade beyond it gets HTTP 503); default 110000, above MaxSessions' default
	MaxProposals   int // client writes proposed and not yet answered; default 4096

	ElectionTicks int  // raft election timeout in ticks; default raftnode's
	NoSync        bool // skip fsync: tests only, never in production

	// RaftTransport, when set, replaces the TCP peer transport (PeerAddr and
	// PeerListener are then unused): tests only, for the fault-injecting
	// in-memory network of raftnode/rafttest.
	RaftTransport raftnode.Transport
	// NoHandOver skips the leadership hand-over when ctx ends, so stopping
	// the member looks like a crash to the others: tests only.
	NoHandOver bool

	// RenewInterval is how often a member sends its clients' session
	// renewals to the leader in one batch. Default 100ms.
	RenewInterval time.Duration
	// ReapInterval is how often the leader looks for container and TTL
	// nodes to delete (and whether it can raise the cluster version).
	// Default 1s.
	ReapInterval time.Duration
	// MaxSessions bounds the sessions this member serves connections for;
	// a hello beyond it is refused with UNAVAILABLE. Default 100000.
	MaxSessions int
	// MaxEphemeralsPerSession bounds the ephemeral nodes one session may
	// own; a create beyond it is refused with TOO_LARGE. Default 100000.
	MaxEphemeralsPerSession int
	// MaxPendingPerConn bounds the requests a connection may have in
	// flight (answers owed); when it is reached the member stops reading
	// that connection until answers go out. Default 256.
	MaxPendingPerConn int
	// Version, when set, is the highest cluster version this member runs,
	// below the code's own: tests only, to run a member as an older
	// release in a mixed-version cluster.
	Version uint64

	// MinFreeBytes is the free space the data dir's file system keeps in
	// reserve: below it client writes fail with UNAVAILABLE ("disk full")
	// and reads go on. Default 64 MiB; negative turns the guard off.
	MinFreeBytes int64

	// MaxWatchesPerSession bounds the watches (one-shot and persistent) a
	// session may hold on one connection; one more is refused with
	// TOO_LARGE. Default 10000.
	MaxWatchesPerSession int
	// WatchHistoryEvents and WatchHistoryBytes bound the history of recent
	// changes that a watch with since replays from; a since older than it
	// gets a resync instead. Defaults 100000 events and 64 MiB.
	WatchHistoryEvents int
	WatchHistoryBytes  int
	// MaxQueuedEvents and MaxQueuedEventBytes bound the watch events queued
	// for one connection and not yet written; a connection past either is
	// closed (1013, "watch events overflowed; resume with since"). Defaults
	// 10000 events and 64 MiB.
	MaxQueuedEvents     int
	MaxQueuedEventBytes int
}
