package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/raftnode"
	"github.com/arbor-db/arbor/tree"
)

// AdminMembersPath takes membership changes by hand (arbor member add,
// promote, remove): a POST of a MemberChange, answered 200 with an empty
// JSON object, or an error status with a wire.Error. Any member takes them:
// raft forwards the change to the leader. It is not authenticated yet
// (that comes with TLS and auth); keep the client port private.
const AdminMembersPath = "/v1/admin/members"

// MemberChange is one membership change by hand.
type MemberChange struct {
	Op      string `json:"op"` // add, promote, remove
	Name    string `json:"name"`
	PeerURL string `json:"peer_url,omitempty"` // add
	Learner bool   `json:"learner,omitempty"`  // add
}

func (s *server) serveAdminMembers(w http.ResponseWriter, r *http.Request) {
	var mc MemberChange
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&mc); err != nil {
		writeAdminError(w, http.StatusBadRequest, errorf(wire.CodeBadRequest, "malformed member change: %v", err))
		return
	}
	ch, ok := s.rep.(membershipChanger)
	if !ok {
		writeAdminError(w, http.StatusNotImplemented, errorf(wire.CodeUnavailable, "this member cannot change membership"))
		return
	}
	if mc.Name == "" {
		writeAdminError(w, http.StatusBadRequest, errorf(wire.CodeBadRequest, "field name: missing"))
		return
	}
	if err := tree.ValidatePath("/"+mc.Name, 0); err != nil || len(mc.Name) > 255 {
		writeAdminError(w, http.StatusBadRequest, errorf(wire.CodeBadRequest, "member name %q: want a name that is one path component", mc.Name))
		return
	}
	var err error
	switch mc.Op {
	case "add":
		if mc.PeerURL == "" {
			writeAdminError(w, http.StatusBadRequest, errorf(wire.CodeBadRequest, "field peer_url: missing (the new member's PEERHOST:PORT)"))
			return
		}
		err = ch.AddMember(r.Context(), mc.Name, mc.PeerURL, mc.Learner)
	case "promote":
		err = ch.PromoteMember(r.Context(), mc.Name)
	case "remove":
		err = ch.RemoveMember(r.Context(), mc.Name)
	default:
		writeAdminError(w, http.StatusBadRequest, errorf(wire.CodeBadRequest, "field op: %q is not add, promote or remove", mc.Op))
		return
	}
	if err != nil {
		status, werr := memberChangeError(err, mc)
		writeAdminError(w, status, werr)
		return
	}
	s.log.Info("membership changed by hand", "op", mc.Op, "member", mc.Name, "peer", mc.PeerURL, "learner", mc.Learner)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
}

// memberChangeError maps a raftnode membership error.
func memberChangeError(err error, mc MemberChange) (int, *wire.Error) {
	switch {
	case errors.Is(err, raftnode.ErrMemberExists):
		return http.StatusConflict, errorf(wire.CodeNodeExists, "member %s already exists", mc.Name)
	case errors.Is(err, raftnode.ErrMemberNotFound):
		return http.StatusNotFound, errorf(wire.CodeNoNode, "no member %s", mc.Name)
	case errors.Is(err, raftnode.ErrNotLearner):
		return http.StatusConflict, errorf(wire.CodeBadRequest, "member %s is a voter already", mc.Name)
	case errors.Is(err, raftnode.ErrLastVoter):
		return http.StatusConflict, errorf(wire.CodeBadRequest, "member %s is the last voter; add another first", mc.Name)
	case errors.Is(err, raftnode.ErrMemberIDReused):
		return http.StatusConflict, errorf(wire.CodeBadRequest, "the id the name %s gives belonged to a removed member and cannot be used again; start the member with an empty --data-dir and --join instead (a joiner takes an id of its own)", mc.Name)
	case errors.Is(err, raftnode.ErrMemberChangePending):
		return http.StatusServiceUnavailable, errorf(wire.CodeUnavailable, "another membership change is in progress; retry")
	}
	return http.StatusServiceUnavailable, errorf(wire.CodeUnavailable, "%s %s: %v", mc.Op, mc.Name, err)
}

func writeAdminError(w http.ResponseWriter, status int, e *wire.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}
