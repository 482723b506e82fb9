package watch

import (
	"maps"
	"slices"

	"github.com/arbor-db/arbor/tree"
)

// Registry holds the watches of one member, each owned by an O (the server
// uses its connection). It is not safe for concurrent use.
type Registry[O comparable] struct {
	next  uint64
	byID  map[uint64]*entry[O]
	owned map[O]map[uint64]*entry[O]
	// exact holds every watch but the recursive ones by its path;
	// recursive holds those, found by walking an event's ancestors.
	exact     map[string][]*entry[O]
	recursive map[string][]*entry[O]
}

type entry[O comparable] struct {
	id    uint64
	owner O
	spec  Spec
	slot  int // index in its path's slice, for O(1) removal
}

// NewRegistry returns an empty registry.
func NewRegistry[O comparable]() *Registry[O] {
	return &Registry[O]{
		byID:      make(map[uint64]*entry[O]),
		owned:     make(map[O]map[uint64]*entry[O]),
		exact:     make(map[string][]*entry[O]),
		recursive: make(map[string][]*entry[O]),
	}
}

// Add registers a watch of spec for owner and returns its id, unique in
// this registry and never 0. The path must be valid; Add does not check.
func (r *Registry[O]) Add(owner O, spec Spec) uint64 {
	r.next++
	e := &entry[O]{id: r.next, owner: owner, spec: spec}
	idx := r.index(spec.Kind)
	e.slot = len(idx[spec.Path])
	idx[spec.Path] = append(idx[spec.Path], e)
	r.byID[e.id] = e
	m := r.owned[owner]
	if m == nil {
		m = make(map[uint64]*entry[O])
		r.owned[owner] = m
	}
	m[e.id] = e
	return e.id
}

func (r *Registry[O]) index(k Kind) map[string][]*entry[O] {
	if k == Recursive {
		return r.recursive
	}
	return r.exact
}

// Remove removes the watch id if owner owns it, and reports whether it did.
func (r *Registry[O]) Remove(owner O, id uint64) bool {
	e := r.byID[id]
	if e == nil || e.owner != owner {
		return false
	}
	r.remove(e)
	return true
}

// RemoveOwner removes every watch of owner and returns how many there were.
func (r *Registry[O]) RemoveOwner(owner O) int {
	m := r.owned[owner]
	n := len(m)
	// In id order, so the slices left behind do not depend on map order.
	for _, id := range slices.Sorted(maps.Keys(m)) {
		r.remove(m[id])
	}
	return n
}

func (r *Registry[O]) remove(e *entry[O]) {
	idx := r.index(e.spec.Kind)
	s := idx[e.spec.Path]
	last := s[len(s)-1]
	s[e.slot], last.slot = last, e.slot
	s[len(s)-1] = nil
	if s = s[:len(s)-1]; len(s) == 0 {
		delete(idx, e.spec.Path)
	} else {
		idx[e.spec.Path] = s
	}
	delete(r.byID, e.id)
	if m := r.owned[e.owner]; m != nil {
		delete(m, e.id)
		if len(m) == 0 {
			delete(r.owned, e.owner)
		}
	}
}

// Owners returns every owner that has a watch, in the order of its oldest
// watch.
func (r *Registry[O]) Owners() []O {
	seen := make(map[O]bool, len(r.owned))
	var out []O
	for _, id := range slices.Sorted(maps.Keys(r.byID)) {
		if o := r.byID[id].owner; !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// Count returns how many watches owner has.
func (r *Registry[O]) Count(owner O) int { return len(r.owned[owner]) }

// Len returns the number of watches.
func (r *Registry[O]) Len() int { return len(r.byID) }

// Get returns the spec and owner of watch id.
func (r *Registry[O]) Get(id uint64) (Spec, O, bool) {
	e := r.byID[id]
	if e == nil {
		var zero O
		return Spec{}, zero, false
	}
	return e.spec, e.owner, true
}

// Match appends to out the events that events fire, in order: for each
// event, the watches on its path (in registration order, give or take
// removals), then the recursive watches from the root down. One-shot
// watches that fire are removed, so a one-shot watch fires once even when
// a multi changes its node twice.
func (r *Registry[O]) Match(events []tree.Event, out []Fired[O]) []Fired[O] {
	var fired []*entry[O]
	for _, ev := range events {
		fired = fired[:0]
		for _, e := range r.exact[ev.Path] {
			if e.spec.Match(ev) {
				out = append(out, Fired[O]{ID: e.id, Owner: e.owner, Kind: e.spec.Kind, Event: forWatch(e.spec.Kind, ev)})
				if e.spec.Kind.OneShot() {
					fired = append(fired, e)
				}
			}
		}
		for _, e := range fired {
			r.remove(e)
		}
		if ev.Type == tree.EventChildrenChanged || len(r.recursive) == 0 {
			continue
		}
		eachAncestor(ev.Path, func(p string) {
			for _, e := range r.recursive[p] {
				out = append(out, Fired[O]{ID: e.id, Owner: e.owner, Kind: Recursive, Event: forWatch(Recursive, ev)})
			}
		})
	}
	return out
}

// eachAncestor calls fn for "/", then every ancestor of p from the root
// down, then p itself. p is a valid path.
func eachAncestor(p string, fn func(string)) {
	fn("/")
	if p == "/" {
		return
	}
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			fn(p[:i])
		}
	}
	fn(p)
}
