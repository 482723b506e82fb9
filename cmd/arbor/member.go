package main

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// memberFlags are the flags of arbor dev and arbor server.
type memberFlags struct {
	name                string
	dataDir             string
	clientAddr          string
	peerAddr            string
	gossipAddr          string
	advertiseGossipAddr string
	gossipKey           string
	gossipKeyFile       string
	key                 []byte // decoded from gossipKey or gossipKeyFile
	advertiseClientAddr string
	advertisePeerAddr   string
	initialCluster      string
	join                string
	learner             bool
	maxFrameBytes       int
	maxDataBytes        int
	snapshotEntries     uint64
	minFreeBytes        int64
	minSession          time.Duration
	maxSession          time.Duration
	maxSessions         int
	maxEphemerals       int
	maxPending          int
	maxConns            int
	maxWatches          int
	historyEvents       int
	historyBytes        int
	queuedEvents        int
	queuedEventBytes    int

	peers []peer // parsed --initial-cluster
}

type peer struct{ name, addr string }

const (
	defaultClientAddr = "127.0.0.1:7400"
	defaultPeerAddr   = "127.0.0.1:7401"
	defaultGossipAddr = "127.0.0.1:7402"
)

func newDevCmd(g *globals, e env) *cobra.Command {
	var f memberFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a single-member cluster with every default, ready for clients at once",
		Long: `Run a single-member cluster named "dev" with every default: the way to try
arbor. It says "ready" once it takes writes. Data lives in --data-dir
(./arbor-data); run it again with the same directory and it recovers its
state. SIGTERM or SIGINT stops it cleanly. It logs warnings and errors only;
--log-level info shows what raft and the server do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.name = "dev"
			if !g.logSet {
				g.level = slog.LevelWarn // a newcomer's terminal is not a log
			}
			if err := f.validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), g, e, &f, true)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data-dir", "./arbor-data", "directory for the member's data")
	fs.StringVar(&f.clientAddr, "client-addr", defaultClientAddr, "WebSocket + HTTP address for clients")
	fs.StringVar(&f.peerAddr, "peer-addr", defaultPeerAddr, "raft address (unused by a single member, but bound)")
	fs.StringVar(&f.gossipAddr, "gossip-addr", defaultGossipAddr, "memberlist gossip address (TCP and UDP)")
	return cmd
}

func newServerCmd(g *globals, e env) *cobra.Command {
	var f memberFlags
	cmd := &cobra.Command{
		Use:   "server --name NAME --data-dir DIR [flags]",
		Short: "Run a member of a cluster",
		Long: `Run a member of a cluster. Bootstrap a new cluster by starting every member
with the same --initial-cluster NAME=PEERHOST:PORT,... (which must name this
member); without --initial-cluster the member forms a single-member cluster of
itself. A member restarted with the same --data-dir recovers its state and
rejoins; flags that only matter at bootstrap are then ignored. SIGTERM or
SIGINT stops it cleanly (a leader hands leadership over first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), g, e, &f, false)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", "", "member name, unique in the cluster (required)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the member's data (required)")
	fs.StringVar(&f.clientAddr, "client-addr", defaultClientAddr, "WebSocket + HTTP address for clients")
	fs.StringVar(&f.peerAddr, "peer-addr", defaultPeerAddr, "raft traffic between members")
	fs.StringVar(&f.gossipAddr, "gossip-addr", defaultGossipAddr, "memberlist gossip address (TCP and UDP), how members find each other")
	fs.StringVar(&f.advertiseGossipAddr, "advertise-gossip-addr", "", "gossip address other members are told (default --gossip-addr)")
	fs.StringVar(&f.gossipKey, "gossip-key", "", "encrypt and authenticate gossip with this key: 16, 24 or 32 bytes, base64 (or ARBOR_GOSSIP_KEY); members without it cannot join")
	fs.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "read the gossip key (base64) from this file")
	fs.StringVar(&f.advertiseClientAddr, "advertise-client-addr", "", "client address others are told (default --client-addr)")
	fs.StringVar(&f.advertisePeerAddr, "advertise-peer-addr", "", "peer address other members dial (default --peer-addr)")
	fs.StringVar(&f.initialCluster, "initial-cluster", "", "bootstrap a new cluster: NAME=PEERHOST:PORT,...")
	fs.StringVar(&f.join, "join", "", "with an empty --data-dir: join the running cluster whose gossip is at GOSSIPHOST:PORT,... (added as a learner, promoted to voter once caught up)")
	fs.BoolVar(&f.learner, "learner", false, "with --join: stay a non-voting member that serves reads and watches")
	fs.IntVar(&f.maxFrameBytes, "max-frame-bytes", 0, "largest WebSocket frame accepted (default 4 MiB)")
	fs.IntVar(&f.maxDataBytes, "max-data-bytes", 0, "largest node data accepted (default 1 MiB)")
	fs.Uint64Var(&f.snapshotEntries, "snapshot-entries", 0, "log entries between snapshots (default 100000)")
	fs.Int64Var(&f.minFreeBytes, "min-free-bytes", 0, "free disk space kept in reserve: below it writes fail (default 64 MiB; -1: off)")
	fs.DurationVar(&f.minSession, "min-session-timeout", 2*time.Second, "shortest session timeout granted; shorter requests are raised to it")
	fs.DurationVar(&f.maxSession, "max-session-timeout", 60*time.Second, "longest session timeout granted; longer requests are lowered to it")
	fs.IntVar(&f.maxSessions, "max-sessions", 100000, "sessions this member serves connections for; more are refused (UNAVAILABLE)")
	fs.IntVar(&f.maxEphemerals, "max-ephemerals-per-session", 100000, "ephemeral nodes one session may own; more are refused (TOO_LARGE)")
	fs.IntVar(&f.maxWatches, "max-watches-per-session", 10000, "watches one session may hold on a connection; more are refused (TOO_LARGE)")
	fs.IntVar(&f.historyEvents, "watch-history-events", 100000, "recent changes kept for watches that resume with since; an older since gets a resync")
	fs.IntVar(&f.historyBytes, "watch-history-bytes", 64<<20, "bytes of recent changes kept for watches that resume with since")
	fs.IntVar(&f.queuedEvents, "max-queued-events", 10000, "watch events queued for one connection; past it the connection is closed and its client resumes with since")
	fs.IntVar(&f.queuedEventBytes, "max-queued-event-bytes", 64<<20, "bytes of watch events queued for one connection; past it the connection is closed")
	fs.IntVar(&f.maxConns, "max-connections", 110000, "open client connections this member accepts; more are refused (HTTP 503)")
	fs.IntVar(&f.maxPending, "max-pending-per-conn", 256, "requests one connection may have in flight; past it the member stops reading it until answers go out")
	return cmd
}

// validate checks the flags and parses --initial-cluster. Every problem is
// wrong usage (exit 2).
func (f *memberFlags) validate() error {
	if f.name == "" {
		return usageErrorf("--name is required")
	}
	if f.dataDir == "" {
		return usageErrorf("--data-dir is required")
	}
	for _, a := range []struct{ flag, v string }{
		{"client-addr", f.clientAddr}, {"peer-addr", f.peerAddr}, {"gossip-addr", f.gossipAddr},
		{"advertise-client-addr", f.advertiseClientAddr}, {"advertise-peer-addr", f.advertisePeerAddr},
	} {
		if a.v == "" && strings.HasPrefix(a.flag, "advertise") {
			continue
		}
		if err := checkHostPort(a.v, true); err != nil {
			return usageErrorf("invalid --%s %q: %v", a.flag, a.v, err)
		}
	}
	if f.maxFrameBytes < 0 || f.maxDataBytes < 0 {
		return usageErrorf("--max-frame-bytes and --max-data-bytes must not be negative")
	}
	if f.minSession != 0 || f.maxSession != 0 {
		if f.minSession < time.Second || f.maxSession < f.minSession {
			return usageErrorf("--min-session-timeout must be at least 1s and at most --max-session-timeout (got %v and %v)", f.minSession, f.maxSession)
		}
		if f.minSession%time.Millisecond != 0 || f.maxSession%time.Millisecond != 0 {
			return usageErrorf("session timeouts are whole milliseconds (got %v and %v)", f.minSession, f.maxSession)
		}
	}
	if f.maxWatches < 0 || f.historyEvents < 0 || f.historyBytes < 0 || f.queuedEvents < 0 || f.queuedEventBytes < 0 {
		return usageErrorf("the watch limits (--max-watches-per-session, --watch-history-*, --max-queued-*) must not be negative")
	}
	if f.maxSessions < 0 || f.maxEphemerals < 0 || f.maxPending < 0 || f.maxConns < 0 {
		return usageErrorf("--max-sessions, --max-connections, --max-ephemerals-per-session and --max-pending-per-conn must not be negative")
	}
	if f.join != "" {
		if f.initialCluster != "" {
			return usageErrorf("--join and --initial-cluster cannot be combined: join a running cluster, or bootstrap a new one")
		}
		for a := range strings.SplitSeq(f.join, ",") {
			if err := checkHostPort(strings.TrimSpace(a), true); err != nil {
				return usageErrorf("invalid --join %q: %v", a, err)
			}
		}
	}
	if f.learner && f.join == "" {
		return usageErrorf("--learner applies only when joining a running cluster with --join")
	}
	if err := f.loadGossipKey(); err != nil {
		return err
	}
	if f.initialCluster != "" {
		peers, err := parseInitialCluster(f.initialCluster)
		if err != nil {
			return usageErrorf("invalid --initial-cluster: %v", err)
		}
		found := false
		for _, p := range peers {
			found = found || p.name == f.name
		}
		if !found {
			return usageErrorf("invalid --initial-cluster: it does not name this member %q", f.name)
		}
		f.peers = peers
	}
	return nil
}

// parseInitialCluster parses NAME=HOST:PORT,... strictly.
func parseInitialCluster(s string) ([]peer, error) {
	var peers []peer
	names, addrs := map[string]bool{}, map[string]bool{}
	for entry := range strings.SplitSeq(s, ",") {
		name, addr, ok := strings.Cut(entry, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("entry %q: want NAME=PEERHOST:PORT", entry)
		}
		if strings.ContainsAny(name, " \t=/") {
			return nil, fmt.Errorf("entry %q: member name %q has a space, '=' or '/'", entry, name)
		}
		if err := checkHostPort(addr, false); err != nil {
			return nil, fmt.Errorf("entry %q: %v", entry, err)
		}
		if names[name] {
			return nil, fmt.Errorf("member name %q appears twice", name)
		}
		if addrs[addr] {
			return nil, fmt.Errorf("peer address %s appears twice", addr)
		}
		names[name], addrs[addr] = true, true
		peers = append(peers, peer{name: name, addr: addr})
	}
	return peers, nil
}

// checkHostPort accepts HOST:PORT with a port in 1..65535 (or 0, meaning
// any free port, when zeroOK).
func checkHostPort(s string, zeroOK bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT")
	}
	if host == "" {
		return fmt.Errorf("want HOST:PORT, host is empty")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return fmt.Errorf("port %q is not a port number", port)
	}
	return nil
}

// loadGossipKey decodes --gossip-key or --gossip-key-file (base64 of 16, 24
// or 32 bytes).
func (f *memberFlags) loadGossipKey() error {
	if f.gossipKey != "" && f.gossipKeyFile != "" {
		return usageErrorf("--gossip-key and --gossip-key-file cannot be combined")
	}
	text, from := f.gossipKey, "--gossip-key"
	if f.gossipKeyFile != "" {
		b, err := os.ReadFile(f.gossipKeyFile)
		if err != nil {
			return usageErrorf("invalid --gossip-key-file: %v", err)
		}
		text, from = strings.TrimSpace(string(b)), "--gossip-key-file "+f.gossipKeyFile
	}
	if text == "" {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return usageErrorf("invalid %s: not base64 (make one with: head -c 32 /dev/urandom | base64)", from)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return usageErrorf("invalid %s: %d bytes; a gossip key is 16, 24 or 32 bytes", from, n)
	}
	f.key = key
	return nil
}
