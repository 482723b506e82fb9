package server

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/server/gossip"
)

// Gossip and membership (the Consul model): every member gossips who it is
// (server/gossip); raft decides who is a member; only the raft leader turns
// what gossip says into membership changes, one at a time: a member that
// gossip reports and raft does not know is added as a learner, and a
// learner that asks to vote is promoted once it has caught up. Nobody is
// removed because gossip calls it dead: that takes an operator.

// gossipPath on the client port answers this member's gossip address, so
// that members that know each other from raft find each other's gossip.
const gossipPath = "/internal/v1/gossip"

// membershipChanger is what the leader needs of raft to change membership.
type membershipChanger interface {
	AddMember(ctx context.Context, name, peerURL string, learner bool) error
	AddMemberID(ctx context.Context, id uint64, name, peerURL string, learner bool) error
	UpdateMemberPeer(ctx context.Context, id uint64, peerURL string) error
	PromoteMember(ctx context.Context, name string) error
	RemoveMember(ctx context.Context, name string) error
	Progress(ctx context.Context) (map[uint64]uint64, error)
}

var _ membershipChanger = (*raftnode.Node)(nil)

// Timing of the membership loop.
const (
	reconcileInterval = time.Second
	// caughtUpEntries: a learner this close to the leader's commit index
	// is promoted.
	caughtUpEntries = 1000
)

// gossipMeta is what this member gossips about itself.
func (s *server) gossipMeta() gossip.Meta {
	return gossip.Meta{Name: s.cfg.Name, ID: s.id, PeerURL: s.cfg.AdvertisePeerAddr,
		ClientURL: s.cfg.AdvertiseClientAddr, Learner: s.cfg.Learner, Version: s.sm.supported}
}

// startGossip starts memberlist when the config asks for it.
func (s *server) startGossip() error {
	if s.cfg.GossipAddr == "" {
		return nil
	}
	g, err := gossip.Start(gossip.Config{
		Meta: s.gossipMeta(), BindAddr: s.cfg.GossipAddr, AdvertiseAddr: s.cfg.AdvertiseGossipAddr,
		Key: s.cfg.GossipKey, Local: isLoopback(s.cfg.GossipAddr), Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("server: gossip on %s: %w", s.cfg.GossipAddr, err)
	}
	s.gossip = g
	return nil
}

func isLoopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "localhost:") || strings.HasPrefix(addr, "[::1]:")
}

// membershipLoop keeps this member in the gossip (joining --join, and the
// members raft knows), and on the leader reconciles raft with it. It runs
// until ctx ends; Run owns it.
func (s *server) membershipLoop(ctx context.Context) {
	if s.gossip == nil {
		return
	}
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	joined := len(s.cfg.Join) == 0
	for {
		if !joined {
			if _, err := s.gossip.Join(s.cfg.Join); err != nil {
				s.log.Warn("cannot join the cluster's gossip yet; retrying", "join", strings.Join(s.cfg.Join, ","), "err", err)
			} else {
				joined = true
				s.log.Info("joined the cluster's gossip", "join", strings.Join(s.cfg.Join, ","))
			}
		}
		s.meetRaftMembers(ctx)
		if s.rep.Status().IsLeader {
			s.reconcile(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.gossip.Changed():
		}
	}
}

// meetRaftMembers joins the gossip of members raft knows (by their
// published client address) that gossip has not seen.
func (s *server) meetRaftMembers(ctx context.Context) {
	seen := make(map[string]bool)
	for _, m := range s.gossip.Members() {
		if m.Alive {
			seen[m.Name] = true
		}
	}
	var attrs map[string]memberAttrs
	s.sm.read(func(v stateView) { attrs = v.memberAttrs() })
	for _, m := range s.rep.Members() {
		a, ok := attrs[m.Name]
		if seen[m.Name] || !ok || a.ClientURL == "" {
			continue
		}
		addr, err := s.fetchGossipAddr(ctx, a.ClientURL)
		if err != nil {
			continue // it may be down: gossip finds it when it is back
		}
		_, _ = s.gossip.Join([]string{addr})
	}
}

func (s *server) fetchGossipAddr(ctx context.Context, clientURL string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+clientURL+gossipPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := s.renewClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s%s: %s", clientURL, gossipPath, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *server) serveGossipAddr(w http.ResponseWriter, _ *http.Request) {
	if s.gossip == nil {
		http.Error(w, "this member runs no gossip", http.StatusNotFound)
		return
	}
	fmt.Fprintln(w, s.gossip.Addr())
}

// reconcile makes at most one membership change toward what gossip says:
// add a member raft does not know (as a learner), or promote a learner
// that asks to vote and has caught up.
func (s *server) reconcile(ctx context.Context) {
	mc, ok := s.rep.(membershipChanger)
	if !ok {
		return
	}
	known := make(map[string]raftnode.MemberInfo)
	for _, m := range s.rep.Members() {
		known[m.Name] = m
	}
	gm := s.gossip.Members()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	for _, m := range gm {
		if k, ok := known[m.Name]; ok && m.Alive && m.ID != 0 && k.ID != m.ID && !k.Alive {
			// The name's member in raft is not this incarnation (added by
			// hand before it started, or a dead member's replacement
			// started with an empty data dir): swap it for the one that
			// runs, removing the old first.
			if err := mc.RemoveMember(ctx, m.Name); err != nil {
				s.log.Warn("replacing a member by its new incarnation failed; will retry", "member", m.Name, "err", err)
			} else {
				s.log.Warn("removed a member that never answered, for the new incarnation of its name that gossips", "member", m.Name,
					"old_id", k.ID, "new_id", m.ID)
			}
			return
		}
		if k, ok := known[m.Name]; ok && m.Alive && k.ID == m.ID && m.PeerURL != "" && k.PeerURL != m.PeerURL {
			// It restarted on another peer address: raft follows gossip.
			if err := mc.UpdateMemberPeer(ctx, m.ID, m.PeerURL); err != nil {
				s.log.Warn("recording a member's new peer address failed; will retry", "member", m.Name, "peer", m.PeerURL, "err", err)
			} else {
				s.log.Info("a member restarted on a new peer address", "member", m.Name, "old", k.PeerURL, "new", m.PeerURL)
			}
			return
		}
		if _, ok := known[m.Name]; ok || !m.Alive || m.PeerURL == "" || m.ID == 0 {
			continue
		}
		if s.removedIDs[m.ID] {
			continue // said once already
		}
		err := mc.AddMemberID(ctx, m.ID, m.Name, m.PeerURL, true)
		switch {
		case err == nil:
			s.log.Info("added a member found by gossip, as a learner", "member", m.Name, "id", m.ID, "peer", m.PeerURL)
		case errors.Is(err, raftnode.ErrMemberIDReused):
			s.removedIDs[m.ID] = true
			s.log.Warn("a removed member gossips again with its old data dir; to join again it must start with an empty one",
				"member", m.Name, "id", m.ID)
			continue
		default:
			s.log.Warn("adding a member found by gossip failed; will retry", "member", m.Name, "err", err)
		}
		return
	}
	var progress map[uint64]uint64
	for _, m := range gm {
		k, ok := known[m.Name]
		if !ok || !k.Learner || m.Learner || !m.Alive {
			continue
		}
		if progress == nil {
			var err error
			if progress, err = mc.Progress(ctx); err != nil || progress == nil {
				return
			}
		}
		if commit := s.rep.Status().Commit; progress[k.ID]+caughtUpEntries < commit {
			continue
		}
		if err := mc.PromoteMember(ctx, m.Name); err != nil {
			s.log.Warn("promoting a caught-up learner failed; will retry", "member", m.Name, "err", err)
		} else {
			s.log.Info("promoted a caught-up learner to voter", "member", m.Name)
		}
		return
	}
}

// gossipAlive returns, when gossip runs, whether it calls each member alive.
func (s *server) gossipAlive() map[string]bool {
	if s.gossip == nil {
		return nil
	}
	out := make(map[string]bool)
	for _, m := range s.gossip.Members() {
		out[m.Name] = m.Alive
	}
	return out
}

// membersHashTTL is how long a computed members fingerprint is reused:
// every ping carries one, and the member set changes seldom.
const membersHashTTL = 100 * time.Millisecond

// membersHash fingerprints the set of members (ids and peer addresses),
// for pings: a client learns the members again when it changes. It is
// computed at most once per membersHashTTL.
func (s *server) membersHash() uint64 {
	now := s.live.since()
	if h, at := s.hashCache.h.Load(), s.hashCache.at.Load(); h != 0 && now-at < int64(membersHashTTL) {
		return h
	}
	h := s.computeMembersHash()
	s.hashCache.h.Store(h)
	s.hashCache.at.Store(now)
	return h
}

func (s *server) computeMembersHash() uint64 {
	h := fnv.New64a()
	var b [8]byte
	ms := s.rep.Members()
	slices.SortFunc(ms, func(a, b raftnode.MemberInfo) int { return cmp.Compare(a.ID, b.ID) })
	for _, m := range ms {
		binary.BigEndian.PutUint64(b[:], m.ID)
		h.Write(b[:])
		h.Write([]byte(m.PeerURL))
	}
	return h.Sum64() | 1 // never 0, which means "not said"
}
