// Package gossip runs a member's hashicorp/memberlist: it tells the other
// members who this member is (its metadata) and keeps the live view of
// everyone it has heard of. Gossip only advises: raft decides membership,
// and only the raft leader turns what gossip says into membership changes.
// Delegates copy and never block: memberlist calls them on its own
// goroutines.
package gossip

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Meta is what a member says about itself.
type Meta struct {
	Name      string `json:"name"`
	ID        uint64 `json:"id"` // raft id
	PeerURL   string `json:"peer_url"`
	ClientURL string `json:"client_url"`
	// Learner: this member asks to stay a non-voting member.
	Learner bool   `json:"learner,omitempty"`
	Version uint64 `json:"version"`
}

// Member is one member as this member's gossip sees it.
type Member struct {
	Meta
	Addr  string // gossip address
	Alive bool   // memberlist considers it alive (not suspect, dead or left)
	State string // alive, suspect, dead, left
}

// Config configures Start.
type Config struct {
	Meta Meta
	// BindAddr is HOST:PORT to listen on (TCP and UDP); AdvertiseAddr,
	// when set, what the others are told to use.
	BindAddr, AdvertiseAddr string
	// Key, when set (16, 24 or 32 bytes), encrypts and authenticates all
	// gossip: a member without it cannot join, and its attempts are logged.
	Key []byte
	// Local tunes timers for loopback or one LAN segment (tests, dev);
	// otherwise memberlist's LAN defaults.
	Local  bool
	Logger *slog.Logger
}

// Gossip is a running memberlist.
type Gossip struct {
	ml      *memberlist.Memberlist
	log     *slog.Logger
	changed chan struct{}

	mu   sync.Mutex
	meta []byte
	view map[string]Member

	closeOnce sync.Once
	closeErr  error
}

// ErrBadKey is returned for a key that is not 16, 24 or 32 bytes.
var ErrBadKey = errors.New("gossip: the key must be 16, 24 or 32 bytes")

// Start binds cfg.BindAddr and starts gossiping. Close stops it.
func Start(cfg Config) (*Gossip, error) {
	if n := len(cfg.Key); n != 0 && n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("%w, got %d", ErrBadKey, n)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	meta, err := json.Marshal(cfg.Meta)
	if err != nil {
		return nil, err
	}
	g := &Gossip{log: logger, changed: make(chan struct{}, 1), meta: meta, view: make(map[string]Member)}
	mc := memberlist.DefaultLANConfig()
	if cfg.Local {
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = cfg.Meta.Name
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind address: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.AdvertiseAddr != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("gossip: advertise address: %w", err)
		}
	}
	if len(cfg.Key) > 0 {
		mc.SecretKey = slices.Clone(cfg.Key)
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	mc.Logger = log.New(&slogWriter{log: logger}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.ml = ml
	return g, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// Addr is the address this member gossips on.
func (g *Gossip) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Join contacts the members at addrs (HOST:PORT) and returns how many
// answered; an error only when none did.
func (g *Gossip) Join(addrs []string) (int, error) {
	n, err := g.ml.Join(addrs)
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = errors.New("no member answered")
	}
	return 0, fmt.Errorf("gossip: join %s: %w", strings.Join(addrs, ","), err)
}

// Members returns everyone this member has heard of, by name. Nodes whose
// metadata does not decode (not an Arbor member) are left out.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	out := make([]Member, 0, len(g.view))
	for _, m := range g.view {
		out = append(out, m)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// note records n as memberlist reports it. It copies everything: memberlist
// goes on changing the Node it lent (its own Members() hands out those
// pointers, which is why the view is kept here).
func (g *Gossip) note(n *memberlist.Node, left bool) {
	var m Member
	if json.Unmarshal(n.Meta, &m.Meta) != nil || m.Name != n.Name {
		return
	}
	m.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.State = stateName(n.State)
	m.Alive = n.State == memberlist.StateAlive && !left
	if left && m.State == "alive" {
		m.State = "dead" // told before memberlist updated the state it lent
	}
	g.mu.Lock()
	g.view[m.Name] = m
	g.mu.Unlock()
	g.notify()
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

// Changed holds a token after any change of the view; it never blocks
// memberlist.
func (g *Gossip) Changed() <-chan struct{} { return g.changed }

// SetMeta changes what this member says about itself and spreads it.
func (g *Gossip) SetMeta(m Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.meta = b
	g.mu.Unlock()
	return g.ml.UpdateNode(time.Second)
}

// Close leaves the gossip (telling the others, briefly) and stops it.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		// Leave fails only when nobody could be told (a member alone):
		// not worth reporting.
		_ = g.ml.Leave(500 * time.Millisecond)
		g.closeErr = g.ml.Shutdown()
	})
	return g.closeErr
}

func (g *Gossip) notify() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// delegate answers memberlist with this member's metadata; it carries no
// user messages or state.
type delegate Gossip

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.meta) > limit {
		return nil
	}
	return slices.Clone(d.meta)
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type events Gossip

// memberlist calls these with its node lock held: the Node is stable while
// note copies it.
func (e *events) NotifyJoin(n *memberlist.Node)   { (*Gossip)(e).note(n, false) }
func (e *events) NotifyLeave(n *memberlist.Node)  { (*Gossip)(e).note(n, true) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Gossip)(e).note(n, false) }

// slogWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// slog records at the matching level.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelInfo
		for tag, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
			if rest, ok := strings.CutPrefix(line, tag); ok {
				line, level = strings.TrimSpace(rest), l
				break
			}
		}
		w.log.Log(context.Background(), level, line, "component", "gossip")
	}
	return len(p), nil
}

var _ io.Writer = (*slogWriter)(nil)
