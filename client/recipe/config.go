package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/arbor-db/arbor/client"
)

// Errors of Config.
var (
	// ErrConfigMissing is Config.Err while the node does not exist (it was
	// deleted, or never created).
	ErrConfigMissing = errors.New("recipe: config node does not exist")
	// ErrConfigDecode is matched by Config.Err while the node holds data
	// the decode function refuses; the decoder's error is wrapped too.
	ErrConfigDecode = errors.New("recipe: config data does not decode")
)

// ConfigValue is one value of a Config: the decoded data, and the zxid
// and version of the write that set it.
type ConfigValue[T any] struct {
	Value   T
	Zxid    uint64
	Version int64
}

// Config is a typed value kept from one node: every write of the node is
// decoded and, when it decodes, becomes the current value. It is kept from
// a persistent watch, which the client registers again after reconnections
// with since, so no write is missed.
type Config[T any] struct {
	c       *client.Client
	path    string
	decode  func([]byte) (T, error)
	updates chan ConfigValue[T]
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	w       *client.Watcher
	cur     ConfigValue[T]
	good    bool  // cur holds a value
	problem error // why cur is not the node's data now
	ended   error
	last    uint64 // zxid of the last write seen
	version int64  // of the node's data now (cur's, unless problem)
}

// NewConfig starts following the node at path, decoding its data with
// decode (nil: encoding/json into a T). When it returns, Get has the
// node's value if it exists and decodes; otherwise Err says why, and the
// first good write arrives on Updates. Call Close when done.
func NewConfig[T any](ctx context.Context, c *client.Client, path string, decode func([]byte) (T, error)) (*Config[T], error) {
	if c == nil {
		return nil, fmt.Errorf("recipe: NewConfig: nil client: %w", client.ErrBadRequest)
	}
	if err := checkRecipePath(path); err != nil {
		return nil, fmt.Errorf("recipe: NewConfig: %w", err)
	}
	if decode == nil {
		decode = func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		}
	}
	cf := &Config[T]{c: c, path: path, decode: decode, updates: make(chan ConfigValue[T], 1), done: make(chan struct{})}
	// The watch first, then the read: the watch reports every write after
	// its answer, the read is answered later and shows the node's mzxid,
	// so a write is either in what the read shows (zxid <= mzxid) or an
	// event after it. When the read finds no node, every event is a write
	// after the watch was set: applied in order they end where the node is.
	w, err := c.Watch(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("recipe: watching config %s: %w", path, err)
	}
	data, st, err := c.Get(ctx, path)
	switch {
	case errors.Is(err, client.ErrNoNode):
		cf.problem = fmt.Errorf("%w: %s", ErrConfigMissing, path)
	case err != nil:
		_ = w.Close(ctx)
		return nil, fmt.Errorf("recipe: reading config %s: %w", path, err)
	default:
		cf.set(data, st.Mzxid, st.Version)
	}
	cf.w = w
	cf.ctx, cf.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if cf.good {
		cf.publish(cf.cur)
	}
	go cf.run()
	return cf, nil
}

// set takes the data written at zxid as the node's; it reports whether
// the value changed (the data decoded).
func (cf *Config[T]) set(data []byte, zxid uint64, version int64) bool {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	cf.last, cf.version = zxid, version
	v, err := cf.decode(data)
	if err != nil {
		cf.problem = fmt.Errorf("%w: %s at zxid %d: %w", ErrConfigDecode, cf.path, zxid, err)
		return false
	}
	cf.cur, cf.good, cf.problem = ConfigValue[T]{Value: v, Zxid: zxid, Version: version}, true, nil
	return true
}

// take applies one event; it reports whether the value changed.
func (cf *Config[T]) take(ev client.WatchEvent) bool {
	cf.mu.Lock()
	last, version := cf.last, cf.version
	cf.mu.Unlock()
	if ev.Type == client.EventResync {
		// The node and its children as they stand: the node is first.
		if len(ev.Nodes) == 0 || ev.Nodes[0].Path != cf.path {
			return cf.missing(ev.Zxid)
		}
		n := ev.Nodes[0]
		if n.Stat.Mzxid <= last {
			return false
		}
		return cf.set(n.Data, n.Stat.Mzxid, n.Stat.Version)
	}
	if ev.Path != cf.path || ev.Zxid <= last {
		return false // a child, or a write the read showed
	}
	switch ev.Type {
	case client.EventCreated:
		return cf.set(ev.Data, ev.Zxid, 0)
	case client.EventData:
		return cf.set(ev.Data, ev.Zxid, version+1)
	case client.EventDeleted:
		return cf.missing(ev.Zxid)
	}
	return false
}

func (cf *Config[T]) missing(zxid uint64) bool {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	cf.last = zxid
	cf.problem = fmt.Errorf("%w: %s deleted at zxid %d", ErrConfigMissing, cf.path, zxid)
	return false
}

// run applies the watch's events until Close or the end of the session,
// publishing once for the events already waiting (a multi that writes the
// node twice gives one value). An overflowed watch is set again since the
// last write seen.
func (cf *Config[T]) run() {
	defer close(cf.done)
	defer close(cf.updates)
	cf.mu.Lock()
	w := cf.w
	cf.mu.Unlock()
	for {
		select {
		case <-cf.ctx.Done():
			cf.end(client.ErrWatchClosed)
			return
		case ev, ok := <-w.Events():
			changed := ok && cf.take(ev)
			if ok {
				changed, ok = cf.drain(w, changed)
			}
			if changed {
				cf.mu.Lock()
				cur := cf.cur
				cf.mu.Unlock()
				cf.publish(cur)
			}
			if ok {
				continue
			}
			if w = cf.rewatch(w); w == nil {
				return
			}
		}
	}
}

// drain takes the events already waiting; open is false when the watch
// ended.
func (cf *Config[T]) drain(w *client.Watcher, changed bool) (_ bool, open bool) {
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return changed, false
			}
			changed = cf.take(ev) || changed
		default:
			return changed, true
		}
	}
}

// rewatch replaces an overflowed watch; nil when the Config ended.
func (cf *Config[T]) rewatch(w *client.Watcher) *client.Watcher {
	err := w.Err()
	if errors.Is(err, client.ErrWatchOverflow) {
		cf.mu.Lock()
		last := cf.last
		cf.mu.Unlock()
		w, err = cf.c.Watch(cf.ctx, cf.path, client.Since(last))
		if err == nil {
			cf.mu.Lock()
			cf.w = w
			cf.mu.Unlock()
			return w
		}
	}
	if cf.ctx.Err() != nil {
		err = client.ErrWatchClosed
	}
	cf.end(err)
	return nil
}

// publish puts v on Updates in place of a value nobody has read yet.
func (cf *Config[T]) publish(v ConfigValue[T]) {
	select {
	case <-cf.updates:
	default:
	}
	cf.updates <- v
}

func (cf *Config[T]) end(err error) {
	cf.mu.Lock()
	cf.ended = err
	cf.mu.Unlock()
}

// Get returns the current value, and false when there has been none yet
// (the node never existed or never decoded). After a delete or a write
// that does not decode it is the last good value: Err says so.
func (cf *Config[T]) Get() (ConfigValue[T], bool) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return cf.cur, cf.good
}

// Err returns nil while Get's value is the node's data now. Otherwise it
// says why not: ErrConfigMissing (the node does not exist), ErrConfigDecode
// wrapping the decoder's error (the last write did not decode), or, once
// the Config stopped following the node, why (client.ErrWatchClosed after
// Close, or the end of the session).
func (cf *Config[T]) Err() error {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.ended != nil {
		return cf.ended
	}
	return cf.problem
}

// Updates returns the channel of new values, in the order they were
// written. It holds only the newest: a reader that falls behind skips the
// values in between but always gets the latest. Writes that do not decode
// and deletes send nothing (see Err). It is closed when the Config ends.
func (cf *Config[T]) Updates() <-chan ConfigValue[T] { return cf.updates }

// Close stops following the node and removes the watch; Updates is closed.
func (cf *Config[T]) Close(ctx context.Context) error {
	cf.cancel()
	<-cf.done
	cf.mu.Lock()
	w := cf.w
	cf.mu.Unlock()
	err := w.Close(ctx)
	if errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrSessionExpired) {
		return nil
	}
	return err
}
