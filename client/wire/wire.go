package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Endpoint and subprotocol of protocol version 1.
const (
	EndpointPath = "/v1"
	Subprotocol  = "arbor.v1.json"
)

// Default limits; servers may be configured with others.
const (
	DefaultMaxFrame = 4 << 20
	DefaultMaxData  = 1 << 20
	DefaultMaxPath  = 4096
)

// Op names.
const (
	OpHello    = "hello"
	OpPing     = "ping"
	OpClose    = "close"
	OpCreate   = "create"
	OpGet      = "get"
	OpExists   = "exists"
	OpChildren = "children"
	OpSet      = "set"
	OpDelete   = "delete"
	OpMulti    = "multi"
	OpCheck    = "check" // inside multi only
	OpSync     = "sync"
	OpWatch    = "watch"
	OpUnwatch  = "unwatch"
	OpLock     = "lock"
	OpUnlock   = "unlock"
	OpElect    = "elect"
	OpResign   = "resign"
	OpLeader   = "leader"
	OpMembers  = "members"
)

// Code is an error code as it crosses the wire.
type Code string

// Error codes of PROTOCOL.md.
const (
	CodeBadRequest             Code = "BAD_REQUEST"
	CodeUnknownOp              Code = "UNKNOWN_OP"
	CodeBadPath                Code = "BAD_PATH"
	CodeNoNode                 Code = "NO_NODE"
	CodeNodeExists             Code = "NODE_EXISTS"
	CodeNotEmpty               Code = "NOT_EMPTY"
	CodeBadVersion             Code = "BAD_VERSION"
	CodeNoChildrenForEphemeral Code = "NO_CHILDREN_FOR_EPHEMERALS"
	CodeTooLarge               Code = "TOO_LARGE"
	CodeReadOnly               Code = "READ_ONLY"
	CodeNoSession              Code = "NO_SESSION"
	CodeSessionExpired         Code = "SESSION_EXPIRED"
	CodeAuthFailed             Code = "AUTH_FAILED"
	CodeNoAuth                 Code = "NO_AUTH"
	CodeNotHeld                Code = "NOT_HELD"
	CodeTimeout                Code = "TIMEOUT"
	CodeUnavailable            Code = "UNAVAILABLE"
	CodeInternal               Code = "INTERNAL"
)

// Request is every request of the protocol in one flat shape; each op reads
// the fields it needs. Sub-ops of a multi use the same shape.
type Request struct {
	ID uint64 `json:"id"`
	Op string `json:"op"`

	Path       string `json:"path,omitempty"`
	Data       []byte `json:"data,omitempty"`
	Version    *int64 `json:"version,omitempty"`
	Ephemeral  bool   `json:"ephemeral,omitempty"`
	Sequential bool   `json:"sequential,omitempty"`
	Container  bool   `json:"container,omitempty"`
	TTLMs      int64  `json:"ttl_ms,omitempty"`
	Recursive  bool   `json:"recursive,omitempty"`
	Local      bool   `json:"local,omitempty"`
	Since      uint64 `json:"since,omitempty"`

	// Watch is a boolean on get/exists/children/leader and a watch id on
	// unwatch; read it with WatchFlag or WatchID.
	Watch json.RawMessage `json:"watch,omitempty"`

	Ops []Request `json:"ops,omitempty"`

	TimeoutMs int64  `json:"timeout_ms,omitempty"`
	Session   string `json:"session,omitempty"`
	Secret    string `json:"secret,omitempty"`
	LastZxid  uint64 `json:"last_zxid,omitempty"`
	Auth      *Auth  `json:"auth,omitempty"`

	Shared bool   `json:"shared,omitempty"`
	WaitMs *int64 `json:"wait_ms,omitempty"`
	Value  []byte `json:"value,omitempty"`
}

// Auth carries credentials on hello when auth is on.
type Auth struct {
	Token string `json:"token"`
}

// VersionOr returns the request's version, or def when absent.
func (r *Request) VersionOr(def int64) int64 {
	if r.Version == nil {
		return def
	}
	return *r.Version
}

// WatchFlag reads the watch field as the boolean of get/exists/children.
func (r *Request) WatchFlag() (bool, error) {
	if len(r.Watch) == 0 || string(r.Watch) == "null" {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(r.Watch, &b); err != nil {
		return false, fmt.Errorf("field watch: want a boolean, got %s", r.Watch)
	}
	return b, nil
}

// WatchID reads the watch field as the watch id of unwatch.
func (r *Request) WatchID() (uint64, error) {
	if len(r.Watch) == 0 {
		return 0, fmt.Errorf("field watch: missing")
	}
	id, err := strconv.ParseUint(string(r.Watch), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field watch: want a watch id, got %s", r.Watch)
	}
	return id, nil
}

// SetWatchFlag sets the watch field to a boolean.
func (r *Request) SetWatchFlag(b bool) {
	if b {
		r.Watch = json.RawMessage("true")
	} else {
		r.Watch = nil
	}
}

// SetWatchID sets the watch field to a watch id.
func (r *Request) SetWatchID(id uint64) {
	r.Watch = json.RawMessage(strconv.FormatUint(id, 10))
}

// Error is the error object of a failed response.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Stat is the metadata of a node.
type Stat struct {
	Czxid          uint64 `json:"czxid"`
	Mzxid          uint64 `json:"mzxid"`
	Pzxid          uint64 `json:"pzxid"`
	Ctime          int64  `json:"ctime"`
	Mtime          int64  `json:"mtime"`
	Version        int64  `json:"version"`
	Cversion       int64  `json:"cversion"`
	DataLength     int64  `json:"data_length"`
	NumChildren    int64  `json:"num_children"`
	EphemeralOwner string `json:"ephemeral_owner"`
}

// OptStat is a stat field that is either absent (the zero OptStat), null
// (Valid with a nil Stat: exists of a missing node) or a stat.
type OptStat struct {
	Stat  *Stat
	Valid bool
}

// SomeStat returns a present stat field.
func SomeStat(s *Stat) OptStat { return OptStat{Stat: s, Valid: true} }

// IsZero reports an absent field, for omitzero.
func (o OptStat) IsZero() bool { return !o.Valid }

// MarshalJSON encodes the stat or null.
func (o OptStat) MarshalJSON() ([]byte, error) {
	if o.Stat == nil {
		return []byte("null"), nil
	}
	return json.Marshal(o.Stat)
}

// UnmarshalJSON decodes a stat or null.
func (o *OptStat) UnmarshalJSON(b []byte) error {
	o.Valid = true
	if string(b) == "null" {
		o.Stat = nil
		return nil
	}
	o.Stat = new(Stat)
	return json.Unmarshal(b, o.Stat)
}

// Member describes one member of the cluster.
type Member struct {
	Name      string `json:"name"`
	ClientURL string `json:"client_url"`
	PeerURL   string `json:"peer_url"`
	Role      string `json:"role"` // leader, follower, learner
	Alive     bool   `json:"alive"`
	// Applied (an Arbor extension): how far the member's log is known to
	// match the leader's, when the answering member leads (for itself:
	// its applied index); Lag is the leader's commit index minus it.
	Applied uint64  `json:"applied,omitempty"`
	Lag     *uint64 `json:"lag,omitempty"`
}

// Roles of a member.
const (
	RoleLeader   = "leader"
	RoleFollower = "follower"
	RoleLearner  = "learner"
)

// Response is a server-to-client message. Servers send responses (ID set,
// Event empty) and events (Event set, encoded through the Event type so they
// carry no id); clients decode every incoming frame into a Response and tell
// them apart by Event.
type Response struct {
	ID    uint64 `json:"id"`
	OK    bool   `json:"ok"`
	Zxid  uint64 `json:"zxid,omitempty"`
	Error *Error `json:"error,omitempty"`
	Index *int   `json:"index,omitempty"` // failing sub-op of a multi

	// hello
	Session   string `json:"session,omitempty"`
	Secret    string `json:"secret,omitempty"`
	TimeoutMs int64  `json:"timeout_ms,omitempty"`
	Server    string `json:"server,omitempty"`
	// RenewedAgoMs (ping, an Arbor extension): how long before this answer
	// the member sent the last renewal of this session that the leader
	// confirmed. The leader's deadline for the session is at least
	// timeout_ms after that, so a client that sent the ping at T may count
	// on its session until T - renewed_ago_ms + timeout_ms. Absent when the
	// member has no confirmed renewal of the session yet.
	RenewedAgoMs *int64 `json:"renewed_ago_ms,omitempty"`
	// MembersHash (ping and members, an Arbor extension): a fingerprint of
	// the set of members; when a ping's differs from the last members
	// answer's, a client asks for the members again.
	MembersHash uint64 `json:"members_hash,omitempty"`

	Path     string     `json:"path,omitempty"`
	Data     []byte     `json:"data,omitempty"`
	Stat     OptStat    `json:"stat,omitzero"`
	Children []string   `json:"children,omitempty"`
	Results  []Response `json:"results,omitempty"`
	Watch    uint64     `json:"watch,omitempty"`
	Members  []Member   `json:"members,omitempty"`
	// NoLeader (members, an Arbor extension): the answering member knows
	// no leader, so the list is its own last view of the membership.
	NoLeader bool `json:"no_leader,omitempty"`

	// lock, elect, leader
	Token *uint64 `json:"token,omitempty"`
	Node  string  `json:"node,omitempty"`
	Value []byte  `json:"value,omitempty"`
	// Leader, set by a server on a leader answer, is what it sends instead
	// of this Response: value, session and token always present, null when
	// there is no leader. Clients decode leader answers into Response (a
	// null token: no leader).
	Leader *LeaderFrame `json:"-"`

	// Event fields, set only on events.
	Event string `json:"event,omitempty"`
	State string `json:"state,omitempty"`
	Type  string `json:"type,omitempty"`
	Nodes []Node `json:"nodes,omitempty"`
	Last  bool   `json:"last,omitempty"`
}

// LeaderFrame is the answer to leader as it is sent.
type LeaderFrame struct {
	ID      uint64  `json:"id"`
	OK      bool    `json:"ok"`
	Zxid    uint64  `json:"zxid,omitempty"`
	Value   *[]byte `json:"value"`
	Session *string `json:"session"`
	Token   *uint64 `json:"token"`
	Watch   uint64  `json:"watch,omitempty"`
}

// Event is a pushed message with no id.
type Event struct {
	Event string `json:"event"`
	State string `json:"state,omitempty"`
	Watch uint64 `json:"watch,omitempty"`
	Type  string `json:"type,omitempty"`
	Path  string `json:"path,omitempty"`
	Zxid  uint64 `json:"zxid,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Nodes []Node `json:"nodes,omitempty"`
	Last  bool   `json:"last,omitempty"`
}

// Event kinds and watch event types.
const (
	EventSession = "session"
	EventWatch   = "watch"
	EventResync  = "resync"

	SessionExpired = "expired"

	WatchCreated  = "created"
	WatchDeleted  = "deleted"
	WatchData     = "data"
	WatchChildren = "children"
)

// Node is one node of a resync event.
type Node struct {
	Path string `json:"path"`
	Data []byte `json:"data,omitempty"`
	Stat Stat   `json:"stat"`
}

// FormatSession renders a session id as the protocol's 16 hex digits.
func FormatSession(id uint64) string {
	if id == 0 {
		return ""
	}
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// ParseSession parses 16 hex digits into a session id.
func ParseSession(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("session id %q: want 16 hex digits", s)
	}
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("session id %q: want 16 hex digits", s)
	}
	return id, nil
}
