package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/tree"
)

const (
	// expireBatch bounds the sessions one expiry command ends.
	expireBatch = 1024
	// reapBatch bounds the nodes one reap command deletes.
	reapBatch = 256
	// versionReportTTL is how recent a member's report of its version must
	// be to count for raising the cluster version.
	versionReportTTL = 10 * time.Second
)

// leaderLoop is the leader's own work, every trackerGranularity: on a new
// term it gives every session a full timeout; then it expires sessions
// past their deadline, raises the cluster version once every voter runs a
// newer one, and reaps container and TTL nodes. Only the leader decides
// any of it; each decision is a replicated command.
func (s *server) leaderLoop(ctx context.Context) {
	t := time.NewTicker(trackerGranularity)
	defer t.Stop()
	var term uint64 // the term this member last led in
	var lastSlow time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.rep.Status()
		if !st.IsLeader {
			term = 0
			continue
		}
		if st.Term != term {
			// Renewals went to other leaders meanwhile: no session may
			// expire because leadership moved.
			s.live.tracker.Reset()
			term = st.Term
			s.log.Info("leading: every session gets a full timeout", "term", term, "sessions", s.live.tracker.Len())
		}
		if s.sm.clusterVersion.Load() >= cmdExpireSessions.minClusterVersion() {
			s.expireDue(ctx, term)
		}
		if time.Since(lastSlow) >= s.cfg.ReapInterval {
			lastSlow = time.Now()
			s.maybeRaiseVersion(ctx)
			if s.sm.clusterVersion.Load() >= cmdReap.minClusterVersion() {
				s.reap(ctx)
			}
			s.forgetRemovedMembers(ctx)
		}
	}
}

// expireDue proposes the expiry of every session past its deadline in
// this leader's tracker, as a decision of term: the deadlines are this
// leader's alone, so raft must not forward the command to a newer leader
// (whose tracker renewed these sessions since) if this member has lost
// leadership by the time it is stepped.
func (s *server) expireDue(ctx context.Context, term uint64) {
	ids := s.live.tracker.Expired()
	for len(ids) > 0 {
		n := min(len(ids), expireBatch)
		chunk := ids[:n]
		ids = ids[n:]
		r, err := s.proposeWaitIn(ctx, term, &command{Type: cmdExpireSessions, Sessions: chunk})
		if err == nil {
			err = r.Err
		}
		if err != nil {
			// Not known to be applied: due again next tick, and not
			// renewable meanwhile (a proposal that timed out may still
			// commit), unless a new term resets them first.
			s.live.tracker.GiveBack(chunk)
			s.live.tracker.GiveBack(ids)
			s.log.Warn("proposing session expiry failed; will retry", "sessions", len(chunk)+len(ids), "err", err)
			return
		}
		s.log.Info("expired sessions", "sessions", len(chunk), "zxid", r.Zxid, "ids", sessionList(chunk, 32))
	}
}

// maybeRaiseVersion raises the cluster version to the lowest version every
// voting member runs, once that is above the current one.
func (s *server) maybeRaiseVersion(ctx context.Context) {
	cur := s.sm.clusterVersion.Load()
	lowest := s.sm.supported
	s.live.versionsMu.Lock()
	for _, m := range s.rep.Members() {
		if m.Learner {
			continue
		}
		mv, ok := s.live.versions[m.Name]
		if m.ID == s.id {
			mv, ok = memberVersion{version: s.sm.supported, at: time.Now()}, true
		}
		if !ok || time.Since(mv.at) > versionReportTTL {
			lowest = 0 // not heard from: wait for it
			break
		}
		lowest = min(lowest, mv.version)
	}
	s.live.versionsMu.Unlock()
	if lowest <= cur {
		return
	}
	r, err := s.proposeWait(ctx, &command{Type: cmdSetClusterVersion, Version: lowest})
	if err == nil {
		err = r.Err
	}
	if err != nil {
		s.log.Warn("raising the cluster version failed; will retry", "version", lowest, "err", err)
	}
}

// reap deletes containers whose last child went and childless TTL nodes
// not modified for their TTL. TTLs are measured from the node's mtime,
// which is replicated, so a new leader goes on where the old one stopped.
func (s *server) reap(ctx context.Context) {
	var due []reapNode
	s.sm.read(func(v stateView) { due = dueForReap(v.tree(), time.Now().UnixMilli()) })
	for len(due) > 0 {
		n := min(len(due), reapBatch)
		r, err := s.proposeWait(ctx, &command{Type: cmdReap, Reap: due[:n]})
		if err != nil {
			s.log.Warn("proposing a reap failed; will retry", "nodes", n, "err", err)
			return
		}
		if r.Reaped > 0 {
			s.metrics.reaped.Add(float64(r.Reaped))
			s.log.Debug("reaped nodes", "nodes", r.Reaped, "zxid", r.Zxid)
		}
		due = due[n:]
	}
}

// forgetRemovedMembers deletes the /arbor/members records of members no
// longer in the configuration (a plain system delete: no new command kind).
// The records are read before the configuration and each delete names the
// version read, so a record published meanwhile by a member that was added
// again stays; one deleted anyway (the member came back with the same
// addresses, which it does not write again) is published again by that
// member (publishAttrs).
func (s *server) forgetRemovedMembers(ctx context.Context) {
	var recs map[string]int64
	s.sm.read(func(v stateView) { recs = v.memberRecords() })
	if len(recs) == 0 {
		return
	}
	members := s.rep.Members()
	if !slices.ContainsFunc(members, func(m raftnode.MemberInfo) bool { return m.ID == s.id }) {
		return // a leader's configuration holds itself; this one is not current
	}
	for _, m := range members {
		delete(recs, m.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		op := tree.Op{Kind: tree.OpDelete, Path: membersPath + "/" + name, Version: recs[name], System: true}
		r, err := s.proposeWait(ctx, &command{Type: cmdTreeOps, Ops: []tree.Op{op}})
		if err == nil {
			err = r.Err
		}
		if err != nil {
			s.log.Warn("deleting a removed member's record failed; will retry", "member", name, "err", err)
			return
		}
		s.log.Info("deleted the record of a removed member", "member", name, "zxid", r.Zxid)
	}
}

// dueForReap returns the nodes of t to reap at wall time nowMs: containers
// that have had children and have none left (ZooKeeper's rule), and
// childless TTL nodes whose mtime is at least their TTL ago.
func dueForReap(t treeReader, nowMs int64) []reapNode {
	var due []reapNode
	for _, p := range t.Containers() {
		if st, ok := t.Exists(p); ok && st.Cversion > 0 && st.NumChildren == 0 {
			due = append(due, reapNode{Kind: reapContainer, Path: p, Czxid: st.Czxid, Mzxid: st.Mzxid})
		}
	}
	for _, p := range t.TTLNodes() {
		st, ok := t.Exists(p)
		_, ttl, _ := t.Flags(p)
		if ok && st.NumChildren == 0 && nowMs-st.Mtime >= ttl {
			due = append(due, reapNode{Kind: reapTTL, Path: p, Czxid: st.Czxid, Mzxid: st.Mzxid})
		}
	}
	return due
}

// sessionList formats up to n session ids for a log line, saying how many
// more there were.
func sessionList(ids []uint64, n int) string {
	var b strings.Builder
	for i, id := range ids {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(ids)-n)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(wire.FormatSession(id))
	}
	return b.String()
}
