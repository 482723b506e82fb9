package raftnode

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
)

const (
	maxSizePerMsg        = 1 << 20
	maxInflightMsgs      = 256
	maxUncommittedSize   = 64 << 20
	maxCommittedPerReady = 64 << 20
	proposalQueue        = 4096
	recvQueue            = 4096
	snapshotsKept        = 2
)

// MemberID is the raft id of a member: FNV-64a of its name, never 0.
func MemberID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}

type proposal struct {
	data []byte
	errc chan error  // Propose waits on it
	done func(error) // or ProposeAsync's callback, run on the raft goroutine
	// term, when not 0, is the only term in which this member may append
	// the command, as leader (ProposeAsLeader).
	term uint64
}

// Node is one raft member. New prepares it; Run drives it.
type Node struct {
	cfg     Config
	id      uint64
	log     *slog.Logger
	sm      StateMachine
	disk    *diskStorage
	store   *logStore     // raft's Storage
	raw     *raft.RawNode // owned by the Run goroutine
	tr      Transport
	snapDir string

	propc     chan proposal
	propBatch []proposal     // stepped together by flushProposals; Run goroutine only
	raftState raft.StateType // from the latest Ready's SoftState; Run goroutine only
	recvc     chan Message
	readc     chan *readWaiter
	actc      chan func()
	reportc   chan struct{}
	reportMu  sync.Mutex
	reports   []report
	done      chan struct{} // closed when Run has returned
	running   atomic.Bool
	closer    sync.Once

	// storageFail carries a storage error of a transport goroutine (a
	// received snapshot) to the loop, which ends Run with it.
	storageFail *failure
	// beforeRecvSync, when set (tests, before Run), runs before a received
	// snapshot file is fsync'd; an error fails it like a failed fsync.
	beforeRecvSync func() error
	// snapSendFilter, when set (tests, before Run), wraps the reader of
	// every snapshot file sent to a peer.
	snapSendFilter func(io.Reader) io.Reader

	// Owned by the Run goroutine.
	confState confState
	applied   uint64
	snapIndex uint64
	reads     readQueue
	removed   bool
	// forceSnapshot asks for a snapshot after a member was added.
	forceSnapshot bool
	lastLead      uint64
	// bytesSinceSnap is the encoded size of the entries applied since the
	// newest snapshot, for Config.SnapshotBytes.
	bytesSinceSnap uint64
	// snapDone receives the result of the snapshot file being written for
	// snapPending (a SnapshotViewer's view); nil while none is, which also
	// switches its select case off.
	snapDone    chan error
	snapPending localSnapshot
	snapStop    chan struct{} // closed when Run stops: fails the write
	snapWG      sync.WaitGroup
	// aloneDecided: campaignIfAlone has made its one decision.
	aloneDecided bool

	// Published for other goroutines.
	term, commit, appliedPub, lead, leaderChanges atomic.Uint64
	snapIndexPub                                  atomic.Uint64
	pending                                       atomic.Int64
	nonce                                         atomic.Uint64

	mu          sync.Mutex // guards the fields below
	members     map[uint64]memberMeta
	voters      []uint64
	learners    []uint64
	confWaiters map[uint64]chan error
}

// New opens storage, restores the newest usable snapshot into sm and
// prepares raft. It starts no goroutine; call Run.
func New(cfg Config, sm StateMachine) (*Node, error) {
	if cfg.Name == "" || cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: Name and DataDir are required", ErrBadConfig)
	}
	applyDefaults(&cfg)
	n := &Node{
		cfg:         cfg,
		id:          MemberID(cfg.Name),
		log:         cfg.Logger.With("member", cfg.Name),
		sm:          sm,
		snapDir:     filepath.Join(cfg.DataDir, "snap"),
		propc:       make(chan proposal, proposalQueue),
		recvc:       make(chan Message, recvQueue),
		readc:       make(chan *readWaiter, 1024),
		actc:        make(chan func()),
		reportc:     make(chan struct{}, 1),
		done:        make(chan struct{}),
		storageFail: newFailure(),
		snapStop:    make(chan struct{}),
		members:     map[uint64]memberMeta{},
		confWaiters: map[uint64]chan error{},
	}
	if err := os.MkdirAll(n.snapDir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	disk, err := openDiskStorageSegments(cfg.DataDir, cfg.NoSync, cfg.Metrics, cfg.Logger, cfg.LogSegmentBytes)
	if err != nil {
		return nil, err
	}
	n.disk = disk
	// Only now that raft.db's lock says no other process uses this dir.
	if err := removeTempSnapshots(n.snapDir); err != nil {
		disk.close()
		return nil, fmt.Errorf("%w: remove temp snapshot files: %w", ErrStorage, err)
	}
	if err := n.open(); err != nil {
		disk.close()
		return nil, err
	}
	return n, nil
}

func applyDefaults(cfg *Config) {
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = 100000
	}
	if cfg.SnapshotBytes == 0 {
		cfg.SnapshotBytes = 256 << 20
	}
	if cfg.MaxLogCacheBytes == 0 {
		cfg.MaxLogCacheBytes = 64 << 20
	}
	if cfg.CompactKeepEntries == 0 {
		cfg.CompactKeepEntries = min(5000, cfg.SnapshotEntries)
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.AdvertisePeerAddr == "" {
		cfg.AdvertisePeerAddr = cfg.ListenPeerAddr
		if cfg.PeerListener != nil {
			cfg.AdvertisePeerAddr = cfg.PeerListener.Addr().String()
		}
	}
	if cfg.ClusterToken == "" {
		cfg.ClusterToken = "arbor"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
}

// open restores sm from the newest usable snapshot, prepares raft's
// Storage over the WAL (without reading the log), creates the RawNode and
// bootstraps a fresh member.
func (n *Node) open() error {
	p, err := n.disk.load()
	if err != nil {
		return err
	}
	fresh := p.empty()
	if err := n.chooseID(fresh); err != nil {
		return err
	}
	n.store = newLogStore(n.disk, n.cfg.MaxLogCacheBytes)
	if err := n.restoreFromDisk(p); err != nil {
		return err
	}
	rc := &raft.Config{
		ID:            n.id,
		ElectionTick:  n.cfg.ElectionTicks,
		HeartbeatTick: n.cfg.HeartbeatTicks,
		Storage:       n.store,
		Applied:       n.applied,
		MaxSizePerMsg: maxSizePerMsg,
		// Committed entries the log cache no longer holds come from
		// the WAL (a replay at start reads the whole log so): each batch
		// is bounded like the cache.
		MaxCommittedSizePerReady:  min(maxCommittedPerReady, n.cfg.MaxLogCacheBytes),
		MaxUncommittedEntriesSize: maxUncommittedSize,
		MaxInflightMsgs:           maxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{n.log.With("component", "raft")},
	}
	raw, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	n.raw = raw
	n.tr = n.cfg.Transport
	if n.tr == nil {
		n.tr = newTCPTransport(n.id, n.cfg, n.log)
	}
	if fresh && !n.cfg.Join {
		if err := n.bootstrap(); err != nil {
			return err
		}
	}
	if fresh && n.cfg.Join {
		// Address hints so the joiner can answer the leader before it
		// learns the membership from the log.
		for _, p := range n.cfg.InitialCluster {
			if id := MemberID(p.Name); id != n.id {
				n.tr.AddPeer(id, p.PeerURL)
			}
		}
	}
	for id, m := range n.members {
		if id != n.id && !m.Removed {
			n.tr.AddPeer(id, m.PeerURL)
		}
	}
	n.publish()
	return nil
}

func (n *Node) bootstrap() error {
	peers := n.cfg.InitialCluster
	if len(peers) == 0 {
		peers = []Peer{{Name: n.cfg.Name, PeerURL: n.cfg.AdvertisePeerAddr}}
	}
	var rps []raft.Peer
	self := false
	for _, p := range peers {
		id := MemberID(p.Name)
		self = self || id == n.id
		rps = append(rps, raft.Peer{ID: id, Context: encodeCCContext(ccContext{Name: p.Name, PeerURL: p.PeerURL})})
		if id != n.id {
			n.tr.AddPeer(id, p.PeerURL)
		}
	}
	if !self {
		return fmt.Errorf("%w: InitialCluster does not contain %q", ErrBadConfig, n.cfg.Name)
	}
	if err := n.raw.Bootstrap(rps); err != nil {
		return fmt.Errorf("%w: bootstrap: %w", ErrBadConfig, err)
	}
	return nil
}

// restoreFromDisk picks the newest valid snapshot file the log still
// covers, restores sm from it and starts the log after it. The entries are
// not read here: raft replays the committed ones through Ready, in batches
// of MaxCommittedSizePerReady, from the WAL.
func (n *Node) restoreFromDisk(p *persisted) error {
	first := p.first
	names, err := listSnapshots(n.snapDir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	var hdr *snapHeader
	var path string
	for _, name := range names {
		path = filepath.Join(n.snapDir, name)
		h, err := verifySnapshotFile(path)
		if err != nil {
			n.log.Warn("skipping unusable snapshot", "file", name, "err", err)
			continue
		}
		if h.index > p.hardState.Commit {
			// Received but never installed (raft refused it): not known
			// to be part of this member's log.
			n.log.Warn("skipping snapshot beyond the persisted commit", "file", name, "commit", p.hardState.Commit)
			continue
		}
		if first > h.index+1 {
			n.log.Warn("skipping snapshot the log no longer covers", "file", name, "first_entry", first)
			continue
		}
		hdr = h
		break
	}
	var start snapshotMeta // of the snapshot restored; zero for none
	if hdr == nil && ((first == 0 && p.snapMeta.Index > 0) || first > 1) {
		return fmt.Errorf("%w: log starts at %d, recorded snapshot %d", ErrNoSnapshot, first, p.snapMeta.Index)
	}
	for id, m := range p.members {
		n.members[id] = m
	}
	if hdr != nil {
		h, rc, err := openSnapshotPayload(path)
		if err != nil {
			return err
		}
		err = n.sm.Restore(h.index, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("restore snapshot %d: %w", h.index, err)
		}
		start = snapshotMeta{Index: h.index, Term: h.term, ConfState: h.confState}
		n.confState = h.confState
		n.applied, n.snapIndex = h.index, h.index
		n.snapIndexPub.Store(h.index)
		for _, m := range h.members {
			if _, ok := p.members[m.ID]; !ok {
				n.members[m.ID] = m
			}
		}
		n.log.Info("restored snapshot", "index", h.index, "term", h.term)
	}
	// Entries at or below the snapshot (kept for slow followers before a
	// restart) stay on disk until the next compaction; raft reads above it.
	n.store.reset(start, p.last)
	hs := p.hardState
	if hs.Commit < n.snapIndex {
		hs.Commit = n.snapIndex
	}
	if hs.Commit > n.store.last {
		return fmt.Errorf("%w: commit index %d beyond the last entry %d", ErrCorrupt, hs.Commit, n.store.last)
	}
	n.store.setHardState(hs)
	n.setConfView()
	return nil
}

// Close releases storage if Run was never called. Safe to call twice.
func (n *Node) Close() error {
	var err error
	n.closer.Do(func() { err = n.disk.close() })
	return err
}

// Run drives the node until ctx ends (returns nil) or a fatal error: a
// storage failure, a raft invariant violation, or this member's removal
// (ErrRemoved). It owns every goroutine of the node and closes storage
// before returning; a failed close is Run's error when it had no other.
// Run may be called once.
func (n *Node) Run(ctx context.Context) (err error) {
	if !n.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer func() {
		// Closing writes a held-back HardState: a failure there is as
		// much a storage failure as one in the loop.
		if cerr := n.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("raftnode: close storage: %w", cerr)
		}
		if err != nil {
			n.log.Error("raft node stopped", "err", err)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	trErr := make(chan error, 1)
	go func() {
		trErr <- n.tr.Run(ctx, handler{n})
		cancel()
	}()
	err = n.safeLoop(ctx)
	n.stopSnapshotWrite()
	if errors.Is(err, ErrStorage) {
		// Close must not write the held-back HardState after a failure
		// (on any path): nothing is written again.
		n.disk.failed = true
	}
	cancel()
	terr := <-trErr
	close(n.done)
	if err == nil && terr != nil && !errors.Is(terr, context.Canceled) {
		err = fmt.Errorf("raftnode: transport: %w", terr)
	}
	return err
}

func (n *Node) safeLoop(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok && errors.Is(e, ErrRaftPanic) {
				err = e
				return
			}
			if e, ok := r.(error); ok {
				// raft panics with a Storage error it cannot handle (a
				// failed read of the log): keep it, so Run treats it as
				// the storage failure it is.
				err = fmt.Errorf("%w: %w", ErrRaftPanic, e)
				return
			}
			err = fmt.Errorf("%w: %v", ErrRaftPanic, r)
		}
	}()
	return n.loop(ctx)
}

func (n *Node) loop(ctx context.Context) error {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	// What start-up left ready (a fresh member's bootstrap entries) is
	// handled before the first tick, so a lone voter campaigns at once.
	if err := n.process(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			n.raw.Tick()
			n.onTick()
		case p := <-n.propc:
			n.stepProposal(p)
		case m := <-n.recvc:
			n.stepMessage(m)
		case w := <-n.readc:
			n.reads.queue = append(n.reads.queue, w)
		case f := <-n.actc:
			f()
		case <-n.reportc:
			n.drainReports()
		case <-n.storageFail.done():
			return n.storageFail.get()
		case err := <-n.snapDone:
			if err := n.finishSnapshotWrite(err); err != nil {
				return err
			}
		}
		if err := n.process(); err != nil {
			return err
		}
	}
}

// process steps what is queued and handles the resulting Ready; it runs
// after every input of the loop.
func (n *Node) process() error {
	// Advance can make raft ready again at once (a single voter commits
	// its own append there) and nothing else would wake the loop before the
	// next tick, so this goes on while raft is ready; each round first takes
	// what arrived meanwhile, so one Ready (one fsync) still covers it all.
	for {
		n.drainInputs()
		n.flushProposals()
		n.maybeIssueRead()
		if err := n.storageFail.get(); err != nil {
			return err // before another Ready writes anything
		}
		if !n.raw.HasReady() {
			break
		}
		if err := n.handleReady(); err != nil {
			return err
		}
	}
	if n.campaignIfAlone() {
		if err := n.handleReady(); err != nil {
			return err
		}
	}
	if n.removed {
		return ErrRemoved
	}
	return nil
}

// campaignIfAlone starts an election at once when this member is the only
// voter and knows no leader, instead of waiting out a randomized election
// timeout (up to two of them, with PreVote): a single-member cluster, as
// arbor dev runs, can take writes as soon as it started. It decides once
// per Run, as soon as everything committed is applied: only then is
// confState the current configuration, and raft refuses to campaign while
// a committed conf change is unapplied. It reports whether it campaigned.
func (n *Node) campaignIfAlone() bool {
	if n.aloneDecided {
		return false
	}
	bs := n.raw.BasicStatus()
	if n.applied < bs.Commit {
		return false
	}
	n.aloneDecided = true
	if bs.Lead != raft.None || len(n.confState.Voters) != 1 || n.confState.Voters[0] != n.id {
		return false
	}
	n.log.Debug("the only voter: campaigning at once", "term", bs.Term)
	if err := n.raw.Campaign(); err != nil {
		n.log.Warn("campaign failed", "err", err)
		return false
	}
	return n.raw.HasReady()
}

// drainInputs steps everything already queued so that one Ready (one
// fsync) covers many proposals: group commit.
func (n *Node) drainInputs() {
	for range proposalQueue {
		select {
		case p := <-n.propc:
			n.stepProposal(p)
		case m := <-n.recvc:
			n.stepMessage(m)
		case w := <-n.readc:
			n.reads.queue = append(n.reads.queue, w)
		default:
			return
		}
	}
}

// stepProposal queues p for the next flushProposals.
func (n *Node) stepProposal(p proposal) {
	n.propBatch = append(n.propBatch, p)
}

// flushProposals steps every queued proposal as one MsgProp, so a follower
// forwards them to the leader in one message (not one per proposal, which
// could overflow the peer queue under load) and the leader appends them in
// one go.
func (n *Node) flushProposals() {
	if len(n.propBatch) == 0 {
		return
	}
	// A proposal bound to a term goes in only while this member leads in
	// it: stepped here, raft appends it in this term or not at all, and
	// never forwards it to a newer leader. Writes carry no term, so the
	// status is read only for the rare batch that holds such a proposal.
	var leaderTerm uint64 // this member's term while it leads; 0 when not (or not read yet)
	statusRead := false
	batch := n.propBatch[:0]
	for _, p := range n.propBatch {
		if p.term != 0 {
			if !statusRead {
				if bs := n.raw.BasicStatus(); bs.RaftState == raft.StateLeader {
					leaderTerm = bs.Term
				}
				statusRead = true
			}
			if p.term != leaderTerm {
				p.finish(ErrNotLeaderInTerm)
				continue
			}
		}
		batch = append(batch, p)
	}
	clear(n.propBatch[len(batch):])
	n.propBatch = batch
	if len(batch) == 0 {
		return
	}
	cmds := make([][]byte, len(batch))
	for i, p := range batch {
		cmds[i] = p.data
	}
	err := n.raw.Step(proposalMessage(n.id, cmds))
	if errors.Is(err, raft.ErrProposalDropped) {
		err = ErrProposalDropped
	}
	for i, p := range batch {
		p.finish(err)
		batch[i] = proposal{}
	}
	n.propBatch = batch[:0]
}

// finish tells p's caller what raft made of it.
func (p proposal) finish(err error) {
	if p.done != nil {
		p.done(err)
	} else {
		p.errc <- err
	}
}

func (n *Node) stepMessage(m Message) {
	if m.To != n.id {
		return
	}
	if err := n.raw.Step(m); err != nil {
		n.log.Debug("step failed", "type", m.Type.String(), "from", m.From, "err", err)
	}
}

func (n *Node) drainReports() {
	n.reportMu.Lock()
	rs := n.reports
	n.reports = nil
	n.reportMu.Unlock()
	for _, r := range rs {
		switch {
		case r.snapshot && r.failed:
			n.raw.ReportSnapshot(r.id, raft.SnapshotFailure)
		case r.snapshot:
			n.raw.ReportSnapshot(r.id, raft.SnapshotFinish)
		default:
			n.raw.ReportUnreachable(r.id)
		}
	}
}

// do runs f on the raft goroutine.
func (n *Node) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case n.actc <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
	<-done
	return nil
}

// ProposeAsync hands cmd to raft without waiting for the raft goroutine to
// step it, so one caller can keep many proposals in flight within one fsync.
// It blocks only while the proposal queue is full. done is called
// at most once, on the raft goroutine (so it must not block), with nil when raft
// accepted the command or the reason it did not (ErrProposalDropped,
// ErrStopped); when ProposeAsync itself returns an error, done is not called.
// If the node stops with the proposal still queued, done is never called:
// callers keep their own deadline, as they must for any proposal.
func (n *Node) ProposeAsync(ctx context.Context, cmd []byte, done func(error)) error {
	return n.proposeAsync(ctx, proposal{data: cmd}, done)
}

// ProposeAsLeader is ProposeAsync for a decision only the leader of term
// may make (from state it alone keeps, such as session deadlines): raft
// takes cmd only if this member still leads in term when its goroutine
// steps it, so the command is appended as an entry of term or not at all;
// otherwise done gets ErrNotLeaderInTerm. A plain proposal that finds this
// member a follower is forwarded to the leader, which would commit a
// decision made in another term.
func (n *Node) ProposeAsLeader(ctx context.Context, term uint64, cmd []byte, done func(error)) error {
	if term == 0 {
		return fmt.Errorf("%w: ProposeAsLeader needs a term", ErrBadConfig)
	}
	return n.proposeAsync(ctx, proposal{data: cmd, term: term}, done)
}

// proposeAsync queues p for the raft goroutine, which calls done with
// what raft made of it (see ProposeAsync).
func (n *Node) proposeAsync(ctx context.Context, p proposal, done func(error)) error {
	n.pending.Add(1)
	p.done = func(err error) {
		n.pending.Add(-1)
		done(err)
	}
	select {
	case n.propc <- p:
		return nil
	case <-ctx.Done():
		n.pending.Add(-1)
		return ctx.Err()
	case <-n.done:
		n.pending.Add(-1)
		return ErrStopped
	}
}

// Propose hands cmd to raft and returns once raft accepted it; it is
// applied later through StateMachine.Apply. cmd must not be modified
// afterwards. Errors: ErrProposalDropped (no leader, or too much
// uncommitted data), ctx's error, ErrStopped.
func (n *Node) Propose(ctx context.Context, cmd []byte) error {
	n.pending.Add(1)
	defer n.pending.Add(-1)
	p := proposal{data: cmd, errc: make(chan error, 1)}
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
	select {
	case err := <-p.errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}
