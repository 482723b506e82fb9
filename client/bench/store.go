package bench

import (
	"context"
	"errors"
)

// Errors a Store maps its system's errors to, so workloads can tell an
// expected outcome from a failure.
var (
	ErrExists   = errors.New("bench: node already exists")
	ErrNotFound = errors.New("bench: node does not exist")
	// ErrSessionLost: the Store's session expired under it.
	ErrSessionLost = errors.New("bench: session lost")
	// ErrMismatch is a verification failure: the system answered, wrongly.
	ErrMismatch = errors.New("bench: verification failed")
	// ErrUnsupported is returned by Run for a workload the Env cannot
	// support (failover without a cluster the command started).
	ErrUnsupported = errors.New("bench: workload not supported here")
	// ErrUnknownWorkload names a workload nobody registered.
	ErrUnknownWorkload = errors.New("bench: unknown workload")
)

// Store is one client session with the system under test. Paths are
// ZooKeeper-style ("/a/b"); systems with a flat key space use them as keys.
// A Store is used by one goroutine at a time.
type Store interface {
	// Create makes path with data, failing with ErrExists when it is there.
	// An ephemeral node lives as long as this Store's session.
	Create(ctx context.Context, path string, data []byte, ephemeral bool) error
	// Set replaces the data of path (unconditionally).
	Set(ctx context.Context, path string, data []byte) error
	// Get reads path: linearizable unless local, which lets the connected
	// member answer from its own state.
	Get(ctx context.Context, path string, local bool) ([]byte, error)
	// Multi applies ops atomically.
	Multi(ctx context.Context, ops []Op) error
	// Sync makes later local reads through this Store see every write
	// acknowledged before it.
	Sync(ctx context.Context, path string) error
	// Close ends the session; its ephemeral nodes go.
	Close(ctx context.Context) error
}

// OpKind is the kind of one sub-op of a Multi.
type OpKind int

// Sub-op kinds.
const (
	OpCreate OpKind = iota
	OpSet
)

// Op is one sub-op of a Multi.
type Op struct {
	Kind OpKind
	Path string
	Data []byte
}

// nopStore fails every operation; it stands in for a session that could
// not be opened so a retry loop can carry on.
type nopStore struct{}

var errNoSession = errors.New("bench: no session")

func (nopStore) Create(context.Context, string, []byte, bool) error { return errNoSession }
func (nopStore) Set(context.Context, string, []byte) error          { return errNoSession }
func (nopStore) Get(context.Context, string, bool) ([]byte, error)  { return nil, errNoSession }
func (nopStore) Multi(context.Context, []Op) error                  { return errNoSession }
func (nopStore) Sync(context.Context, string) error                 { return errNoSession }
func (nopStore) Close(context.Context) error                        { return nil }
