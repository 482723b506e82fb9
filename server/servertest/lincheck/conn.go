package lincheck

import (
	"context"
	"errors"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

// Conn is a client.Client whose operations are recorded in a Recorder.
// Every method returns the recorded Output and the client's error (nil on
// success). A method whose error is indeterminate or a lost connection
// leaves the Client possibly broken: the caller should Close it and dial a
// new session (and Wrap it again).
type Conn struct {
	rec    *Recorder
	c      *client.Client
	id     int
	member string
}

// Wrap records c's operations under a new connection number. member names
// the member c talks to, for reports only.
func (r *Recorder) Wrap(c *client.Client, member string) *Conn {
	return &Conn{rec: r, c: c, id: r.NewClient(), member: member}
}

// Client returns the wrapped client.
func (cn *Conn) Client() *client.Client { return cn.c }

// ID returns the connection number.
func (cn *Conn) ID() int { return cn.id }

func (cn *Conn) input(k Kind, path string) Input {
	return Input{Kind: k, Path: path, Version: AnyVersion, Session: cn.c.Session(), Member: cn.member}
}

// do sends req and records it; reads that fail are discarded.
func (cn *Conn) do(ctx context.Context, in Input, req *wire.Request, fill func(*wire.Response, *Output)) (Output, error) {
	id := cn.rec.Call(cn.id, in)
	resp, err := cn.c.Do(ctx, req)
	var out Output
	if err != nil {
		var e *client.Error
		switch {
		case client.IsIndeterminate(err):
			out.Unknown = true
		case in.Kind == KindGet:
			cn.rec.Discard(id)
			return out, err
		case errors.As(err, &e) && (e.Code == client.CodeCanceled || e.Code == client.CodeClosed || e.Code == client.CodeConnectionLost):
			// Not sent, or lost on a read-only path: treat as unknown to
			// stay safe for writes.
			out.Unknown = true
		case errors.As(err, &e):
			out.Err = e.Code
		default:
			out.Unknown = true
		}
		cn.rec.Return(id, out)
		return out, err
	}
	out.Zxid = resp.Zxid
	if fill != nil {
		fill(resp, &out)
	}
	cn.rec.Return(id, out)
	return out, nil
}

func version(v int64) *int64 { return &v }

// Create creates path with data (ephemeral: owned by this session).
func (cn *Conn) Create(ctx context.Context, path, data string, ephemeral bool) (Output, error) {
	in := cn.input(KindCreate, path)
	in.Data, in.Ephemeral = data, ephemeral
	return cn.do(ctx, in, &wire.Request{Op: wire.OpCreate, Path: path, Data: []byte(data), Ephemeral: ephemeral},
		func(r *wire.Response, o *Output) {
			if r.Stat.Stat != nil {
				o.Version = r.Stat.Stat.Version
			}
		})
}

// Set sets path's data if its version is v (AnyVersion: any).
func (cn *Conn) Set(ctx context.Context, path, data string, v int64) (Output, error) {
	in := cn.input(KindSet, path)
	in.Data, in.Version = data, v
	return cn.do(ctx, in, &wire.Request{Op: wire.OpSet, Path: path, Data: []byte(data), Version: version(v)},
		func(r *wire.Response, o *Output) {
			if r.Stat.Stat != nil {
				o.Version = r.Stat.Stat.Version
			}
		})
}

// Delete deletes path if its version is v (AnyVersion: any).
func (cn *Conn) Delete(ctx context.Context, path string, v int64) (Output, error) {
	in := cn.input(KindDelete, path)
	in.Version = v
	return cn.do(ctx, in, &wire.Request{Op: wire.OpDelete, Path: path, Version: version(v)}, nil)
}

// CAS sets path's data to data if its version is v, as the multi
// [check(path, v), set(path, data, any)].
func (cn *Conn) CAS(ctx context.Context, path string, v int64, data string) (Output, error) {
	in := cn.input(KindCAS, path)
	in.Data, in.Version = data, v
	req := &wire.Request{Op: wire.OpMulti, Ops: []wire.Request{
		{Op: wire.OpCheck, Path: path, Version: version(v)},
		{Op: wire.OpSet, Path: path, Data: []byte(data), Version: version(AnyVersion)},
	}}
	return cn.do(ctx, in, req, func(r *wire.Response, o *Output) {
		if len(r.Results) == 2 && r.Results[1].Stat.Stat != nil {
			o.Version = r.Results[1].Stat.Stat.Version
		}
	})
}

// Get reads path, linearizably unless local.
func (cn *Conn) Get(ctx context.Context, path string, local bool) (Output, error) {
	in := cn.input(KindGet, path)
	in.Local = local
	return cn.do(ctx, in, &wire.Request{Op: wire.OpGet, Path: path, Local: local}, func(r *wire.Response, o *Output) {
		o.Data = string(r.Data)
		if r.Stat.Stat != nil {
			o.Version = r.Stat.Stat.Version
			o.Owner = r.Stat.Stat.EphemeralOwner
		}
	})
}

// Close closes the session and stops the client. The close is recorded
// (CheckEphemerals relies on it) as acknowledged only when the member
// answered it; client.Client.Close alone also returns nil when the
// connection was lost first.
func (cn *Conn) Close(ctx context.Context) error {
	_, err := cn.do(ctx, cn.input(KindClose, ""), &wire.Request{Op: wire.OpClose}, nil)
	cerr := cn.c.Close(ctx)
	if err != nil {
		return err
	}
	return cerr
}
