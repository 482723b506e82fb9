package watch

import (
	"strings"

	"github.com/arbor-db/arbor/tree"
)

// Kind is the kind of a watch.
type Kind uint8

const (
	Data       Kind = iota + 1 // one-shot, set by get
	Exists                     // one-shot, set by exists
	Children                   // one-shot, set by children
	Persistent                 // the watch op on one node
	Recursive                  // the watch op on a node and its subtree
)

// OneShot reports whether a watch of kind k ends with its first event.
func (k Kind) OneShot() bool { return k == Data || k == Exists || k == Children }

func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Exists:
		return "exists"
	case Children:
		return "children"
	case Persistent:
		return "persistent"
	case Recursive:
		return "recursive"
	}
	return "unknown"
}

// Spec is what a watch watches: a kind and a path.
type Spec struct {
	Kind Kind
	Path string
}

// Match reports whether ev fires a watch of spec s. The watch reports ev's
// own type: a children watch fires with EventChildrenChanged of its node
// and with EventDeleted of its node.
func (s Spec) Match(ev tree.Event) bool {
	switch s.Kind {
	case Data:
		return ev.Path == s.Path && (ev.Type == tree.EventDataChanged || ev.Type == tree.EventDeleted)
	case Exists:
		return ev.Path == s.Path && ev.Type != tree.EventChildrenChanged
	case Children:
		return ev.Path == s.Path && (ev.Type == tree.EventChildrenChanged || ev.Type == tree.EventDeleted)
	case Persistent:
		return ev.Path == s.Path
	case Recursive:
		return ev.Type != tree.EventChildrenChanged && Under(ev.Path, s.Path)
	}
	return false
}

// Under reports whether p is root or below it.
func Under(p, root string) bool {
	if root == "/" || p == root {
		return true
	}
	return len(p) > len(root) && strings.HasPrefix(p, root) && p[len(root)] == '/'
}

// Fired is one event for one watch.
type Fired[O comparable] struct {
	ID    uint64
	Owner O
	Kind  Kind
	Event tree.Event // Data is set only for persistent watches' created and data events
}

// forWatch returns ev as a watch of kind k reports it: one-shot events carry
// no data, and neither do deleted and children events.
func forWatch(k Kind, ev tree.Event) tree.Event {
	if k.OneShot() || (ev.Type != tree.EventCreated && ev.Type != tree.EventDataChanged) {
		ev.Data = nil
	}
	return ev
}
