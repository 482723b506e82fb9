package server

import (
	"context"
	"errors"
	"time"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/watch"
)

// Default bounds of watches; see Config.
const (
	defaultMaxWatchesPerSession = 10000
	defaultHistoryEvents        = 100000
	defaultHistoryBytes         = 64 << 20
	defaultMaxQueuedEvents      = 10000
	defaultMaxQueuedEventBytes  = 64 << 20
)

// oneShotKind is the watch a read with "watch": true sets.
var oneShotKind = map[string]watch.Kind{
	wire.OpGet: watch.Data, wire.OpExists: watch.Exists, wire.OpChildren: watch.Children,
}

// watchedRead evaluates get, exists or children and sets a one-shot watch
// in the same view, so the watch fires on the first change after the state
// the response shows. A read that fails (NO_NODE of get and children) sets
// none, as ZooKeeper; exists of a missing node does.
func (c *conn) watchedRead(op, path string) (resp *wire.Response) {
	c.srv.sm.read(func(v stateView) {
		if werr := c.checkWatchLimit(v); werr != nil {
			resp = &wire.Response{Error: werr}
			return
		}
		resp = treeRead(v, op, path)
		if resp.Error == nil {
			resp.Watch = v.addWatch(c, watch.Spec{Kind: oneShotKind[op], Path: path})
			c.srv.metrics.watchesSet.WithLabelValues(oneShotKind[op].String()).Inc()
		}
	})
	return resp
}

// checkWatchLimit refuses one more watch beyond the session's limit.
func (c *conn) checkWatchLimit(v stateView) *wire.Error {
	limit := c.srv.cfg.MaxWatchesPerSession
	if n := v.numWatches(c); n >= limit {
		c.srv.metrics.limits.WithLabelValues("watches").Inc()
		return errorf(wire.CodeTooLarge, "session %s has %d watches on this connection, the most it may (--max-watches-per-session); remove some with unwatch",
			wire.FormatSession(c.session), n)
	}
	return nil
}

// watchOp validates a watch request and queues its evaluation.
func (c *conn) watchOp(p *pending, req *wire.Request) {
	if werr := c.srv.checkPath(req.Path); werr != nil {
		c.fail(p, werr)
		return
	}
	spec := watch.Spec{Kind: watch.Persistent, Path: req.Path}
	if req.Recursive {
		spec.Kind = watch.Recursive
	}
	since, deadline := req.Since, p.deadline
	p.eventsAfter = true
	p.read = func() *wire.Response { return c.setWatch(spec, since, deadline) }
}

// setWatch registers a persistent watch. With since it first queues every
// change after since from the history (after waiting until this member has
// applied since), or, when the history no longer reaches back that far,
// the watched state as it stands now in resync chunks; the live events
// follow. All of it happens in one view, so nothing slips in between. The
// response goes out before those events (pending.eventsAfter).
func (c *conn) setWatch(spec watch.Spec, since uint64, deadline time.Time) (resp *wire.Response) {
	s := c.srv
	if since > s.sm.appliedIndex() {
		done, cancel := context.WithDeadline(c.ctx, deadline)
		ok := s.sm.waitApplied(done.Done(), since)
		cancel()
		if !ok {
			return &wire.Response{Error: errorf(wire.CodeTimeout, "this member has not yet applied zxid %d; try another member", since)}
		}
	}
	s.sm.read(func(v stateView) {
		if werr := c.checkWatchLimit(v); werr != nil {
			resp = &wire.Response{Error: werr}
			return
		}
		id := v.addWatch(c, spec)
		s.metrics.watchesSet.WithLabelValues(spec.Kind.String()).Inc()
		at := v.zxid()
		resp = &wire.Response{OK: true, Zxid: at, Watch: id}
		if since == 0 {
			return
		}
		evs, err := v.history(since, spec)
		if err == nil && len(evs) <= s.cfg.MaxQueuedEvents {
			replay := make([]queuedEvent, len(evs))
			for i, ev := range evs {
				replay[i] = watchEvent(id, ev.Zxid, eventTail(ev))
			}
			// Forced: the replay is bounded by the queue's count already, and
			// refusing it would only bring the client back for the same.
			c.events.push(replay, true)
			return
		}
		if err != nil && !errors.Is(err, watch.ErrTooOld) {
			resp = &wire.Response{Error: toWireError(err, 0, spec.Path)}
			v.removeWatch(c, id)
			return
		}
		s.metrics.watchResyncs.Inc()
		c.events.push(resyncChunks(v.tree(), id, at, spec, s.cfg.MaxFrameBytes), true)
	})
	return resp
}

// unwatchOp validates an unwatch request and queues its evaluation, in
// order with the reads around it.
func (c *conn) unwatchOp(p *pending, req *wire.Request) {
	id, err := req.WatchID()
	if err != nil {
		c.fail(p, errorf(wire.CodeBadRequest, "%v", err))
		return
	}
	p.read = func() (resp *wire.Response) {
		c.srv.sm.read(func(v stateView) {
			if !v.removeWatch(c, id) {
				resp = &wire.Response{Error: errorf(wire.CodeBadRequest,
					"no watch %d on this connection: it fired (one-shot), was removed, or was set on another connection", id)}
				return
			}
			resp = &wire.Response{OK: true, Zxid: v.zxid()}
		})
		return resp
	}
}

// resyncChunks returns the resync events of watch id: the watched node (a
// Persistent watch: with its children, the state its events describe; a
// Recursive one: with its whole subtree, parents first) as it stands at
// zxid, split so that each frame stays within maxFrame. A missing node
// gives one empty chunk.
func resyncChunks(t treeReader, id, zxid uint64, spec watch.Spec, maxFrame int) []queuedEvent {
	budget := maxFrame - 1024 // the envelope, with room to spare
	var out []queuedEvent
	cur := &resyncFrame{Event: wire.EventResync, Watch: id, Zxid: zxid, Nodes: []wire.Node{}}
	size := 0
	add := func(p string) bool {
		data, st, err := t.Get(p)
		if err != nil {
			return false
		}
		n := 320 + 2*len(p) + 4*(len(data)+2)/3 // stat, path and base64 data, generously
		if size+n > budget && len(cur.Nodes) > 0 {
			out = append(out, queuedEvent{zxid: zxid, size: size, resync: cur})
			cur = &resyncFrame{Event: wire.EventResync, Watch: id, Zxid: zxid, Nodes: []wire.Node{}}
			size = 0
		}
		cur.Nodes = append(cur.Nodes, wire.Node{Path: p, Data: data, Stat: *toWireStat(st)})
		size += n
		return true
	}
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		if !add(p) || depth == 0 {
			return
		}
		names, _, err := t.Children(p)
		if err != nil {
			return
		}
		for _, name := range names {
			walk(childPath(p, name), depth-1)
		}
	}
	depth := 1 // the node and its children
	if spec.Kind == watch.Recursive {
		depth = -1 // all the way down
	}
	walk(spec.Path, depth)
	cur.Last = true
	return append(out, queuedEvent{zxid: zxid, size: size, resync: cur})
}

func childPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}
