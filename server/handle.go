package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/tree"
)

// handle decodes and validates one request frame and returns the pending
// response for it. Writes are proposed before handle returns; hello is
// answered before handle returns, so later requests know the session.
func (c *conn) handle(data []byte, now time.Time) *pending {
	var req wire.Request
	if err := wire.DecodeRequest(data, &req); err != nil {
		return errPending(req.ID, "", now, decodeError(err))
	}
	if req.Op == "" {
		return errPending(req.ID, "", now, errorf(wire.CodeBadRequest, "field op: missing"))
	}
	p := &pending{id: req.ID, op: req.Op, start: now, deadline: now.Add(c.srv.cfg.RequestTimeout)}
	if req.Op != wire.OpHello && c.session == 0 {
		if _, known := knownOps[req.Op]; !known {
			p.op = "unknown"
		}
		return c.fail(p, errorf(wire.CodeNoSession, "the first request on a connection must be hello"))
	}
	if c.session != 0 {
		c.touched.Store(true)
	}
	switch req.Op {
	case wire.OpClose, wire.OpCreate, wire.OpSet, wire.OpDelete, wire.OpMulti,
		wire.OpLock, wire.OpUnlock, wire.OpElect, wire.OpResign:
		if err := c.awaitReads(); err != nil {
			return c.fail(p, replicationError(errShuttingDown))
		}
	}
	switch req.Op {
	case wire.OpHello:
		c.hello(p, &req)
	case wire.OpPing:
		p.read = c.pingRead
	case wire.OpClose:
		c.srv.propose(c.ctx, p, &command{Type: cmdCloseSession, Session: c.session}, c.srv.buildOK)
		p.closeAfter = true
	case wire.OpCreate, wire.OpSet, wire.OpDelete:
		op, werr := c.srv.treeOp(&req, c.session)
		if werr == nil {
			werr = c.srv.checkCreates(c.session, []tree.Op{op})
		}
		if werr != nil {
			return c.fail(p, werr)
		}
		cmd := &command{Type: cmdTreeOps, Session: c.session, Ops: []tree.Op{op}}
		c.srv.propose(c.ctx, p, cmd, c.srv.buildSingle(op))
	case wire.OpMulti:
		c.multi(p, &req)
	case wire.OpGet, wire.OpExists, wire.OpChildren:
		c.treeRead(p, &req)
	case wire.OpSync:
		if req.Path != "" {
			if werr := c.srv.checkPath(req.Path); werr != nil {
				return c.fail(p, werr)
			}
		}
		p.read = c.srv.okRead
		p.batch = c.srv.barrier.join()
	case wire.OpMembers:
		p.read = c.srv.membersRead
	case wire.OpWatch:
		c.watchOp(p, &req)
	case wire.OpUnwatch:
		c.unwatchOp(p, &req)
	case wire.OpLock, wire.OpElect:
		c.lockOp(p, &req)
	case wire.OpUnlock, wire.OpResign:
		c.unlockOp(p, &req)
	case wire.OpLeader:
		c.leaderOp(p, &req)
	case wire.OpCheck:
		return c.fail(p, errorf(wire.CodeBadRequest, "op \"check\" is only allowed inside multi"))
	default:
		p.op = "unknown"
		return c.fail(p, errorf(wire.CodeUnknownOp, "unknown op %q", req.Op))
	}
	if p.read != nil {
		c.readsAhead.Add(1)
	}
	return p
}

// knownOps are the ops of PROTOCOL.md; metrics label anything else
// "unknown" so clients cannot grow the label set.
var knownOps = map[string]struct{}{
	wire.OpHello: {}, wire.OpPing: {}, wire.OpClose: {}, wire.OpCreate: {}, wire.OpGet: {},
	wire.OpExists: {}, wire.OpChildren: {}, wire.OpSet: {}, wire.OpDelete: {}, wire.OpMulti: {},
	wire.OpCheck: {}, wire.OpSync: {}, wire.OpWatch: {}, wire.OpUnwatch: {}, wire.OpLock: {},
	wire.OpUnlock: {}, wire.OpElect: {}, wire.OpResign: {}, wire.OpLeader: {}, wire.OpMembers: {},
}

// fail completes p with an error.
func (c *conn) fail(p *pending, e *wire.Error) *pending {
	p.resp = &wire.Response{ID: p.id, Error: e}
	return p
}

// decodeError turns a JSON decoding error into a BAD_REQUEST naming the
// broken field when encoding/json says which.
func decodeError(err error) *wire.Error {
	var te *json.UnmarshalTypeError
	var be base64.CorruptInputError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return errorf(wire.CodeBadRequest, "a request must be a JSON object, got a JSON %s", te.Value)
	case errors.As(err, &te):
		return errorf(wire.CodeBadRequest, "field %s: want %s, got a JSON %s", te.Field, jsonTypeName(te.Type.String()), te.Value)
	case errors.As(err, &be):
		return errorf(wire.CodeBadRequest, "a bytes field (data or value) is not valid standard base64")
	}
	return errorf(wire.CodeBadRequest, "malformed JSON: %v", err)
}

func jsonTypeName(goType string) string {
	switch goType {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "uint64", "int64", "*int64":
		return "an integer"
	case "[]uint8":
		return "base64 bytes"
	case "[]wire.Request":
		return "an array of requests"
	}
	return fmt.Sprintf("a %s", goType)
}

// checkPath validates a request path.
func (s *server) checkPath(p string) *wire.Error {
	if p == "" {
		return errorf(wire.CodeBadRequest, "field path: missing")
	}
	if err := tree.ValidatePath(p, s.cfg.MaxPathBytes); err != nil {
		return toWireError(err, 0, p)
	}
	return nil
}

// treeOp validates a create, set, delete or check request and builds its op.
func (s *server) treeOp(req *wire.Request, session uint64) (tree.Op, *wire.Error) {
	if werr := s.checkPath(req.Path); werr != nil {
		return tree.Op{}, werr
	}
	if req.Op != wire.OpCheck && isReserved(req.Path) {
		return tree.Op{}, errorf(wire.CodeReadOnly, "%s is reserved for the server", req.Path)
	}
	if req.Op == wire.OpDelete && req.Path == "/" {
		return tree.Op{}, errorf(wire.CodeBadPath, "the root / cannot be deleted")
	}
	if len(req.Data) > s.cfg.MaxDataBytes {
		return tree.Op{}, errorf(wire.CodeTooLarge, "data of %d bytes is over the limit of %d bytes", len(req.Data), s.cfg.MaxDataBytes)
	}
	op := tree.Op{Path: req.Path, Version: req.VersionOr(-1)}
	switch req.Op {
	case wire.OpCreate:
		op.Kind = tree.OpCreate
		op.Data = req.Data
		op.Sequential = req.Sequential
		op.Container = req.Container
		op.TTLMs = req.TTLMs
		if werr := checkCreateFlags(req); werr != nil {
			return tree.Op{}, werr
		}
		if req.Ephemeral {
			op.Owner = session
		}
	case wire.OpSet:
		op.Kind = tree.OpSet
		op.Data = req.Data
	case wire.OpDelete:
		op.Kind = tree.OpDelete
		op.Recursive = req.Recursive
	case wire.OpCheck:
		if req.Version == nil {
			return tree.Op{}, errorf(wire.CodeBadRequest, "field version: missing (check compares it; -1 checks only that %s exists)", req.Path)
		}
		op.Kind = tree.OpCheck
		// A check only reads, and reads of /arbor are allowed; System lets
		// the tree accept it there.
		op.System = isReserved(req.Path)
	}
	return op, nil
}

// checkCreateFlags refuses the flag combinations ZooKeeper's CreateMode
// has no mode for: a TTL is only for persistent nodes, and a container is
// a plain persistent node that goes away with its last child.
func checkCreateFlags(req *wire.Request) *wire.Error {
	switch {
	case req.TTLMs < 0:
		return errorf(wire.CodeBadRequest, "field ttl_ms: must not be negative, got %d", req.TTLMs)
	case req.TTLMs > 0 && req.Ephemeral:
		return errorf(wire.CodeBadRequest, "ttl_ms and ephemeral cannot be combined: an ephemeral node lives as long as its session")
	case req.Container && req.Ephemeral:
		return errorf(wire.CodeBadRequest, "container and ephemeral cannot be combined")
	case req.Container && req.TTLMs > 0:
		return errorf(wire.CodeBadRequest, "container and ttl_ms cannot be combined")
	case req.Container && req.Sequential:
		return errorf(wire.CodeBadRequest, "container and sequential cannot be combined")
	}
	return nil
}

// checkCreates refuses creates the cluster cannot honour yet (container and
// TTL nodes before cluster version 2, whose reaper older members lack) and
// ephemerals beyond the per-session limit.
func (s *server) checkCreates(sess uint64, ops []tree.Op) *wire.Error {
	eph := 0
	for i := range ops {
		op := &ops[i]
		if op.Kind != tree.OpCreate {
			continue
		}
		if (op.Container || op.TTLMs > 0) && s.sm.clusterVersion.Load() < cmdReap.minClusterVersion() {
			return errorf(wire.CodeBadRequest, "container and TTL nodes need cluster version %d; this cluster runs version %d until every member is upgraded",
				cmdReap.minClusterVersion(), s.sm.clusterVersion.Load())
		}
		if op.Owner != 0 {
			eph++
		}
	}
	if eph == 0 {
		return nil
	}
	var owned int
	s.sm.read(func(v stateView) { owned = v.tree().NumEphemerals(sess) })
	if owned+eph > s.cfg.MaxEphemeralsPerSession {
		s.metrics.limits.WithLabelValues("ephemerals").Inc()
		return errorf(wire.CodeTooLarge, "session %s owns %d ephemeral nodes; %d more would pass the limit of %d per session",
			wire.FormatSession(sess), owned, eph, s.cfg.MaxEphemeralsPerSession)
	}
	return nil
}

// isReserved reports whether p is /arbor or below it.
func isReserved(p string) bool {
	return p == tree.Reserved || len(p) > len(tree.Reserved) && p[:len(tree.Reserved)+1] == tree.Reserved+"/"
}

// multi validates the sub-ops of a multi and proposes it.
func (c *conn) multi(p *pending, req *wire.Request) {
	if req.Ops == nil {
		c.fail(p, errorf(wire.CodeBadRequest, "field ops: missing"))
		return
	}
	if len(req.Ops) == 0 {
		// Nothing to apply (ZooKeeper accepts an empty multi too): answer
		// in order, at the applied zxid, without a log entry.
		p.read = c.srv.okRead
		return
	}
	ops := make([]tree.Op, len(req.Ops))
	for i := range req.Ops {
		sub := &req.Ops[i]
		var werr *wire.Error
		switch sub.Op {
		case wire.OpCreate, wire.OpSet, wire.OpDelete, wire.OpCheck:
			ops[i], werr = c.srv.treeOp(sub, c.session)
		case "":
			werr = errorf(wire.CodeBadRequest, "field op: missing")
		default:
			werr = errorf(wire.CodeBadRequest, "op %q is not allowed inside multi (create, set, delete, check are)", sub.Op)
		}
		if werr != nil {
			idx := i
			p.resp = &wire.Response{ID: p.id, Error: werr, Index: &idx}
			return
		}
	}
	if werr := c.srv.checkCreates(c.session, ops); werr != nil {
		p.resp = &wire.Response{ID: p.id, Error: werr}
		return
	}
	cmd := &command{Type: cmdTreeOps, Session: c.session, Ops: ops, Multi: true}
	c.srv.propose(c.ctx, p, cmd, c.srv.buildMulti(ops))
}

// treeRead validates get, exists and children and queues their evaluation.
func (c *conn) treeRead(p *pending, req *wire.Request) {
	if werr := c.srv.checkPath(req.Path); werr != nil {
		p.resp = &wire.Response{ID: p.id, Error: werr}
		return
	}
	watch, err := req.WatchFlag()
	if err != nil {
		p.resp = &wire.Response{ID: p.id, Error: errorf(wire.CodeBadRequest, "%v", err)}
		return
	}
	op, path := req.Op, req.Path
	if watch {
		p.read = func() *wire.Response { return c.watchedRead(op, path) }
	} else {
		p.read = func() *wire.Response { return c.srv.treeReadNow(op, path) }
	}
	if !req.Local && !bugStaleRead {
		p.batch = c.srv.barrier.join()
	}
}
