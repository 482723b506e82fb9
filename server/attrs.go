package server

import (
	"context"
	"encoding/json"
	"time"
)

// proposeWait proposes cmd and waits until it is applied, for commands the
// server issues itself.
func (s *server) proposeWait(ctx context.Context, cmd *command) (applyResult, error) {
	return s.proposeWaitIn(ctx, 0, cmd)
}

// proposeWaitIn is proposeWait for a decision of the leader of term (see
// submitIn).
func (s *server) proposeWaitIn(ctx context.Context, term uint64, cmd *command) (applyResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	select {
	case s.proposals <- struct{}{}:
	case <-ctx.Done():
		return applyResult{}, ctx.Err()
	}
	defer s.releaseProposal()
	wait, err := s.submitIn(ctx, term, cmd)
	if err != nil {
		return applyResult{}, err
	}
	defer s.waits.cancel(cmd.Origin)
	select {
	case r := <-wait:
		if r.Refused != nil {
			return applyResult{}, r.Refused
		}
		return r, nil
	case <-ctx.Done():
		return applyResult{}, ctx.Err()
	}
}

// publishAttrs makes sure /arbor/members/NAME holds this member's current
// attributes: once the member sees a leader, it writes them if the stored
// ones differ, retrying every tick until it succeeds; then it checks again
// every ReapInterval until ctx ends, and writes them again if they went (the
// leader deletes the records of members it no longer has, and a member
// removed and added again may lose its record to that in a race).
func (s *server) publishAttrs(ctx context.Context) {
	want := memberAttrs{Name: s.cfg.Name, ClientURL: s.cfg.AdvertiseClientAddr, PeerURL: s.cfg.AdvertisePeerAddr}
	tick := time.NewTicker(s.cfg.TickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !s.rep.Ready() {
			continue
		}
		if s.storedAttrs() == want {
			s.attrsPublished.Store(true)
			tick.Reset(s.cfg.ReapInterval)
			continue
		}
		r, err := s.proposeWait(ctx, &command{Type: cmdMemberAttrs, Member: want})
		if err == nil && r.Err != nil {
			err = r.Err
		}
		if err != nil {
			s.log.Warn("publishing member attributes failed; will retry", "err", err)
			tick.Reset(s.cfg.TickInterval)
			continue
		}
		// proposeWait returns once the command is applied here, so the
		// record is readable locally now.
		s.log.Info("published member attributes", "client_url", want.ClientURL, "peer_url", want.PeerURL, "zxid", r.Zxid)
		s.attrsPublished.Store(true)
		tick.Reset(s.cfg.ReapInterval)
	}
}

// storedAttrs reads this member's attributes from the tree.
func (s *server) storedAttrs() (m memberAttrs) {
	s.sm.read(func(v stateView) {
		if data, _, err := v.tree().Get(membersPath + "/" + s.cfg.Name); err == nil {
			_ = json.Unmarshal(data, &m)
		}
	})
	return m
}
