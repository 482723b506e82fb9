package client

import (
	"context"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// Stat is the metadata of a node.
type Stat = wire.Stat

// CreateOption modifies a create.
type CreateOption func(*wire.Request)

// Ephemeral makes the node live only as long as this session.
func Ephemeral() CreateOption { return func(r *wire.Request) { r.Ephemeral = true } }

// Sequential appends the parent's cversion, zero-padded to 10 digits, to the
// name; Create returns the real name.
func Sequential() CreateOption { return func(r *wire.Request) { r.Sequential = true } }

// Container makes a node the server deletes once its last child goes.
func Container() CreateOption { return func(r *wire.Request) { r.Container = true } }

// TTL makes a node the server deletes when it has had no change and no
// children for d.
func TTL(d time.Duration) CreateOption {
	return func(r *wire.Request) { r.TTLMs = d.Milliseconds() }
}

// ReadOption modifies a read.
type ReadOption func(*readConfig)

type readConfig struct {
	req  *wire.Request
	once *<-chan WatchEvent
}

// Local answers from the connected member's own state without confirming
// with the leader: sequentially consistent, never older than anything this
// connection has already seen, and cheaper than the linearizable default.
func Local() ReadOption { return func(r *readConfig) { r.req.Local = true } }

// WatchOnce sets a one-shot watch with the read, as ZooKeeper's watch flag:
// on success *ch receives a channel that gets the watch's one event and is
// then closed. Get watches for a set or delete of the node, Exists for its
// create, set or delete (it also works on a missing node), Children for a
// child created or deleted or the node's own delete. A read that fails
// sets no watch and leaves *ch alone. One-shot events carry no data: read
// again. If the connection breaks before the event, the channel gets an
// event with Err ErrWatchLost instead (the new member has no such watch;
// read again with WatchOnce, and compare what you read).
func WatchOnce(ch *<-chan WatchEvent) ReadOption { return func(r *readConfig) { r.once = ch } }

// DeleteOption modifies a delete. It is also a WatchOption (Recursive).
type DeleteOption func(*wire.Request)

// Recursive applies to the node and everything below it: Delete deletes
// them all, Watch watches them all.
func Recursive() DeleteOption { return func(r *wire.Request) { r.Recursive = true } }

// AnyVersion matches every version in Set, Delete and OpCheck.
const AnyVersion int64 = -1

// Create creates path with data and returns its real name (which differs
// from path for a Sequential node) and its stat.
func (c *Client) Create(ctx context.Context, path string, data []byte, opts ...CreateOption) (string, *Stat, error) {
	req := wire.Request{Op: wire.OpCreate, Path: path, Data: data}
	for _, o := range opts {
		o(&req)
	}
	resp, err := c.Do(ctx, &req)
	if err != nil {
		return "", nil, err
	}
	return resp.Path, resp.Stat.Stat, nil
}

// Get returns the data and stat of path.
func (c *Client) Get(ctx context.Context, path string, opts ...ReadOption) ([]byte, *Stat, error) {
	resp, err := c.read(ctx, wire.OpGet, path, opts)
	if err != nil {
		return nil, nil, err
	}
	return resp.Data, resp.Stat.Stat, nil
}

// Exists returns the stat of path, or a nil stat and no error when it does
// not exist.
func (c *Client) Exists(ctx context.Context, path string, opts ...ReadOption) (*Stat, error) {
	resp, err := c.read(ctx, wire.OpExists, path, opts)
	if err != nil {
		return nil, err
	}
	return resp.Stat.Stat, nil
}

// Children returns the sorted names of path's children and path's stat.
func (c *Client) Children(ctx context.Context, path string, opts ...ReadOption) ([]string, *Stat, error) {
	resp, err := c.read(ctx, wire.OpChildren, path, opts)
	if err != nil {
		return nil, nil, err
	}
	return resp.Children, resp.Stat.Stat, nil
}

func (c *Client) read(ctx context.Context, op, path string, opts []ReadOption) (*wire.Response, error) {
	req := wire.Request{Op: op, Path: path}
	rc := readConfig{req: &req}
	for _, o := range opts {
		o(&rc)
	}
	if rc.once == nil {
		return c.Do(ctx, &req)
	}
	req.SetWatchFlag(true)
	w := &Watcher{c: c, path: path, oneShot: true, ch: make(chan WatchEvent, 1)}
	resp, err := c.doRegister(ctx, &req, func(cn *conn, resp *wire.Response) {
		if resp.Watch != 0 {
			c.bind(w, cn, resp)
		}
	})
	if err == nil {
		*rc.once = w.ch
	}
	return resp, err
}

// Set replaces the data of path if its version is version (AnyVersion: any)
// and returns the new stat.
func (c *Client) Set(ctx context.Context, path string, data []byte, version int64) (*Stat, error) {
	resp, err := c.Do(ctx, &wire.Request{Op: wire.OpSet, Path: path, Data: data, Version: &version})
	if err != nil {
		return nil, err
	}
	return resp.Stat.Stat, nil
}

// Delete deletes path if its version is version (AnyVersion: any).
func (c *Client) Delete(ctx context.Context, path string, version int64, opts ...DeleteOption) error {
	req := wire.Request{Op: wire.OpDelete, Path: path, Version: &version}
	for _, o := range opts {
		o(&req)
	}
	_, err := c.Do(ctx, &req)
	return err
}

// Sync makes later reads on this client see every write committed before it.
func (c *Client) Sync(ctx context.Context, path string) error {
	_, err := c.Do(ctx, &wire.Request{Op: wire.OpSync, Path: path})
	return err
}

// Members lists the members of the cluster as the connected member sees them.
func (c *Client) Members(ctx context.Context) ([]wire.Member, error) {
	resp, err := c.Do(ctx, &wire.Request{Op: wire.OpMembers})
	if err != nil {
		return nil, err
	}
	return resp.Members, nil
}

// Ping round-trips to the member (and renews the session).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Do(ctx, &wire.Request{Op: wire.OpPing})
	return err
}

// Op is one sub-op of a Multi; build it with OpCreate, OpSet, OpDelete or
// OpCheck.
type Op struct{ req wire.Request }

// OpCreate creates a node inside a Multi.
func OpCreate(path string, data []byte, opts ...CreateOption) Op {
	op := Op{wire.Request{Op: wire.OpCreate, Path: path, Data: data}}
	for _, o := range opts {
		o(&op.req)
	}
	return op
}

// OpSet sets a node's data inside a Multi.
func OpSet(path string, data []byte, version int64) Op {
	return Op{wire.Request{Op: wire.OpSet, Path: path, Data: data, Version: &version}}
}

// OpDelete deletes a node inside a Multi.
func OpDelete(path string, version int64) Op {
	return Op{wire.Request{Op: wire.OpDelete, Path: path, Version: &version}}
}

// OpCheck fails the Multi unless path exists at version (AnyVersion: any).
func OpCheck(path string, version int64) Op {
	return Op{wire.Request{Op: wire.OpCheck, Path: path, Version: &version}}
}

// Result is the outcome of one sub-op of a successful Multi: Path is the
// created name for a create; Stat is set for create and set.
type Result struct {
	Op   string
	Path string
	Stat *Stat
}

// Multi applies ops atomically: all of them or none. On failure the *Error's
// Index names the failing sub-op.
func (c *Client) Multi(ctx context.Context, ops ...Op) ([]Result, error) {
	req := wire.Request{Op: wire.OpMulti, Ops: make([]wire.Request, len(ops))}
	for i, op := range ops {
		req.Ops[i] = op.req
	}
	resp, err := c.Do(ctx, &req)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(ops))
	for i := range results {
		results[i].Op = ops[i].req.Op
		if i < len(resp.Results) {
			results[i].Path = resp.Results[i].Path
			results[i].Stat = resp.Results[i].Stat.Stat
		}
	}
	return results, nil
}
