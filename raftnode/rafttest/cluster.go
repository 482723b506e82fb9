package rafttest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/raftnode"
)

// Options configure a Cluster. Zero values pick test-friendly defaults.
type Options struct {
	Seed               int64
	SnapshotEntries    uint64        // default 10000
	CompactKeepEntries uint64        // default raftnode's
	TickInterval       time.Duration // default 20ms
	ElectionTicks      int           // default 10
	NoSync             bool          // default false: real fsyncs
	SnapshotBytes      uint64        // default raftnode's
	MaxLogCacheBytes   uint64        // default raftnode's
	LogSegmentBytes    int64         // default raftnode's
	// NewStateMachine builds a member's state machine (fresh on every
	// start and restart). Default: NewKV.
	NewStateMachine func(name string) raftnode.StateMachine
	Logger          *slog.Logger
}

// Member is one member of a Cluster.
type Member struct {
	Name string
	Dir  string
	Join bool

	mu     sync.Mutex
	sm     raftnode.StateMachine
	node   *raftnode.Node
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Cluster is an in-process raft cluster on a fault-injecting Network.
type Cluster struct {
	t       testing.TB
	opts    Options
	Net     *Network
	mu      sync.Mutex
	members []*Member
	initial []raftnode.Peer
}

// NewCluster starts n members bootstrapped together. They are stopped at
// test cleanup.
func NewCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.TickInterval == 0 {
		opts.TickInterval = 20 * time.Millisecond
	}
	if opts.NewStateMachine == nil {
		opts.NewStateMachine = func(string) raftnode.StateMachine { return NewKV() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{t: t, opts: opts, Net: NewNetwork(opts.Seed)}
	for i := range n {
		name := fmt.Sprintf("n%d", i)
		c.initial = append(c.initial, raftnode.Peer{Name: name, PeerURL: name})
		c.members = append(c.members, &Member{Name: name, Dir: t.TempDir()})
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(c.Close)
	return c
}

func (c *Cluster) member(i int) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i]
}

// Size is the number of members ever started (including removed ones).
func (c *Cluster) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// Name of member i.
func (c *Cluster) Name(i int) string { return c.member(i).Name }

func (c *Cluster) start(i int) {
	c.t.Helper()
	m := c.member(i)
	sm := c.opts.NewStateMachine(m.Name)
	id := raftnode.MemberID(m.Name)
	cfg := raftnode.Config{
		Name:               m.Name,
		DataDir:            m.Dir,
		AdvertisePeerAddr:  m.Name,
		InitialCluster:     c.initial,
		Join:               m.Join,
		SnapshotEntries:    c.opts.SnapshotEntries,
		CompactKeepEntries: c.opts.CompactKeepEntries,
		SnapshotBytes:      c.opts.SnapshotBytes,
		MaxLogCacheBytes:   c.opts.MaxLogCacheBytes,
		LogSegmentBytes:    c.opts.LogSegmentBytes,
		TickInterval:       c.opts.TickInterval,
		ElectionTicks:      c.opts.ElectionTicks,
		NoSync:             c.opts.NoSync,
		Logger:             c.opts.Logger,
		Transport:          c.Net.Endpoint(id),
	}
	node, err := raftnode.New(cfg, sm)
	if err != nil {
		c.t.Fatalf("start %s: %v", m.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.mu.Lock()
	m.sm, m.node, m.cancel, m.done, m.err = sm, node, cancel, done, nil
	m.mu.Unlock()
	go func() {
		err := node.Run(ctx)
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(done)
	}()
}

// Node returns member i's current node.
func (c *Cluster) Node(i int) *raftnode.Node {
	m := c.member(i)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// SM returns member i's current state machine.
func (c *Cluster) SM(i int) raftnode.StateMachine {
	m := c.member(i)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sm
}

// KV returns member i's state machine as a *KV (a ViewKV's KV; nil for
// other types).
func (c *Cluster) KV(i int) *KV {
	switch sm := c.SM(i).(type) {
	case *KV:
		return sm
	case *ViewKV:
		return sm.KV
	}
	return nil
}

// Running reports whether member i's Run has not returned.
func (c *Cluster) Running(i int) bool {
	m := c.member(i)
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Exited returns a channel closed when member i's current Run returns,
// and a func giving its error.
func (c *Cluster) Exited(i int) (<-chan struct{}, func() error) {
	m := c.member(i)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.err
	}
}

// Crash stops member i without any shutdown step and returns Run's error.
func (c *Cluster) Crash(i int) error {
	m := c.member(i)
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	<-done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Restart starts member i again from its data dir with a fresh state
// machine. It must be stopped.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Running(i) {
		c.t.Fatalf("restart %d: still running", i)
	}
	c.start(i)
}

// AddJoiner starts a new empty member with Join set and returns its index.
// The cluster still has to AddMember it.
func (c *Cluster) AddJoiner(name string) int {
	c.mu.Lock()
	c.members = append(c.members, &Member{Name: name, Dir: c.t.TempDir(), Join: true})
	i := len(c.members) - 1
	c.mu.Unlock()
	c.start(i)
	return i
}

func (c *Cluster) id(i int) uint64 { return raftnode.MemberID(c.Name(i)) }

// Partition splits members into groups that cannot talk to each other.
// Members in no group keep talking to everyone.
func (c *Cluster) Partition(groups ...[]int) {
	for gi, g := range groups {
		for gj, h := range groups {
			if gi == gj {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					c.Net.Block(c.id(a), c.id(b))
				}
			}
		}
	}
}

// Isolate cuts member i off from every other member, both ways.
func (c *Cluster) Isolate(i int) {
	for j := range c.Size() {
		if j != i {
			c.Net.Block(c.id(i), c.id(j))
			c.Net.Block(c.id(j), c.id(i))
		}
	}
}

// BlockOneWay drops messages from member a to member b.
func (c *Cluster) BlockOneWay(a, b int) { c.Net.Block(c.id(a), c.id(b)) }

// Heal removes every partition.
func (c *Cluster) Heal() { c.Net.Heal() }

// SetDropRate sets the probability of dropping a message.
func (c *Cluster) SetDropRate(p float64) {
	c.Net.mu.Lock()
	c.Net.dropRate = p
	c.Net.mu.Unlock()
}

// SetFaults sets drop and duplicate probabilities and the maximum random
// delay (which reorders messages).
func (c *Cluster) SetFaults(drop, dup float64, maxDelay time.Duration) {
	c.Net.SetFaults(drop, dup, maxDelay)
}

// Leader returns the index of the running member that leads in the highest
// term, or -1.
func (c *Cluster) Leader() int {
	best, term := -1, uint64(0)
	for i := range c.Size() {
		if !c.Running(i) {
			continue
		}
		st := c.Node(i).Status()
		if st.IsLeader && st.Term >= term {
			best, term = i, st.Term
		}
	}
	return best
}

// WaitLeader waits for a leader (other than not, unless not < 0) and
// fails the test after timeout.
func (c *Cluster) WaitLeader(timeout time.Duration, not int) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 && l != not {
			return l
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", timeout)
	return -1
}

// ProposeKV proposes cmd through the current leader until the leader's KV
// has applied it, re-proposing after a lost attempt (so a command may be
// applied more than once).
func (c *Cluster) ProposeKV(ctx context.Context, cmd string) error {
	for {
		l := c.Leader()
		if l >= 0 {
			if kv := c.KV(l); kv != nil {
				if err := c.Node(l).Propose(ctx, []byte(cmd)); err == nil {
					attempt := time.Now().Add(2 * time.Second)
					for time.Now().Before(attempt) && ctx.Err() == nil && c.Running(l) {
						if kv.Has(cmd) {
							return nil
						}
						time.Sleep(2 * time.Millisecond)
					}
				}
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("propose %q: %w", cmd, ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitApplied waits until every listed running member applied index.
func (c *Cluster) WaitApplied(timeout time.Duration, index uint64, members ...int) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, i := range members {
			if c.Node(i).Status().Applied < index {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for members to apply")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops every member and waits for in-flight transfers.
func (c *Cluster) Close() {
	for i := range c.Size() {
		c.Crash(i)
	}
	c.Net.Wait()
}

// Member returns member i (its Name and data Dir).
func (c *Cluster) Member(i int) *Member { return c.member(i) }
