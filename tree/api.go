package tree

import "errors"

// Errors returned by tree operations; match with errors.Is. Path errors wrap
// ErrBadPath with a message naming the broken rule.
var (
	ErrBadPath                 = errors.New("tree: bad path")
	ErrNoNode                  = errors.New("tree: node does not exist")
	ErrNodeExists              = errors.New("tree: node already exists")
	ErrNotEmpty                = errors.New("tree: node has children")
	ErrBadVersion              = errors.New("tree: version does not match")
	ErrNoChildrenForEphemerals = errors.New("tree: ephemeral nodes cannot have children")
	ErrTooLarge                = errors.New("tree: too large")
	ErrReadOnly                = errors.New("tree: path is reserved")
	ErrBadSnapshot             = errors.New("tree: bad snapshot")
)

// Reserved is the subtree that only the server itself may write.
const Reserved = "/arbor"

// Stat is the metadata of a node, following ZooKeeper's rules.
type Stat struct {
	Czxid, Mzxid, Pzxid uint64
	Ctime, Mtime        int64 // Unix ms, from the command
	Version, Cversion   int32
	DataLength          int32
	NumChildren         int32
	EphemeralOwner      uint64 // session id; 0 for persistent nodes
}

// OpKind names a mutation.
type OpKind uint8

const (
	OpCreate OpKind = iota + 1
	OpSet
	OpDelete
	OpCheck // multi only
)

// Op is one mutation. Version -1 means any.
type Op struct {
	Kind       OpKind
	Path       string
	Data       []byte // retained by the tree: the caller must not modify it afterwards
	Version    int64
	Owner      uint64 // ephemeral owner session for create; 0 = persistent
	Sequential bool
	Container  bool
	TTLMs      int64
	Recursive  bool // delete
	System     bool // allowed to write under /arbor
}

// Result is what one op answers: create gives the real path and stat, set gives the stat.
type Result struct {
	Path string
	Stat Stat
}

// EventType is the kind of change an event reports.
type EventType uint8

const (
	EventCreated EventType = iota + 1
	EventDeleted
	EventDataChanged
	EventChildrenChanged
)

// Event is one change made by a mutation, in the order made.
type Event struct {
	Type EventType
	Path string
	Zxid uint64
	Data []byte // new data on created and data events
}

// OpError reports which sub-op of a multi failed; it unwraps to the cause.
type OpError struct {
	Index int
	Err   error
}

func (e *OpError) Error() string { return e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }
