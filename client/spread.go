package client

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

// Where a session goes. Unless Config.InOrder is set, a new session goes to
// the next member of a per-process rotation with a random start, and a
// reconnect goes to the other members in random order, the member it lost
// last: sessions spread across the cluster, and the sessions of a member
// that fails spread across the others.
//
// The Clients of a process that dial the same Endpoints share what they
// learn of the cluster (a clusterView): the first one asks its member for
// the members; later ones spread over the live members at once, without a
// members request of their own, while a members answer or a ping with the
// same members_hash has confirmed the view within viewFresh.

// viewFresh is how long a confirmed view is used without a new
// confirmation. Clients that hold sessions confirm it with every ping.
const viewFresh = 30 * time.Second

// maxViews bounds the process's views; past it, views not confirmed
// within viewFresh are dropped.
const maxViews = 64

// clusterView is what the Clients of one process know about the cluster
// behind one set of Endpoints.
type clusterView struct {
	mu      sync.Mutex
	members []wire.Member // the last members answer
	hash    uint64        // its members_hash
	seen    time.Time     // when members or a ping last confirmed hash
	next    uint64        // rotation of new sessions
}

var views struct {
	sync.Mutex
	m map[string]*clusterView
}

// viewFor returns the view shared by the Clients dialling cfg.Endpoints,
// or nil when nothing is shared: with NetDialContext the endpoints name
// addresses of that dialer, which another Config may map elsewhere.
func viewFor(cfg Config) *clusterView {
	if cfg.InOrder || cfg.NetDialContext != nil {
		return nil
	}
	key := strings.Join(slices.Sorted(slices.Values(cfg.Endpoints)), ",")
	views.Lock()
	defer views.Unlock()
	if v := views.m[key]; v != nil {
		return v
	}
	if views.m == nil {
		views.m = make(map[string]*clusterView)
	}
	if len(views.m) >= maxViews {
		for k, v := range views.m {
			if !v.fresh() {
				delete(views.m, k)
			}
		}
	}
	v := &clusterView{next: rand.Uint64()}
	views.m[key] = v
	return v
}

// fresh reports whether the view's members are recent enough to dial.
func (v *clusterView) fresh() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.members != nil && time.Since(v.seen) < viewFresh
}

// snapshot returns the members and hash when the view is fresh.
func (v *clusterView) snapshot() ([]wire.Member, uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.members == nil || time.Since(v.seen) >= viewFresh {
		return nil, 0, false
	}
	return v.members, v.hash, true
}

// update records a members answer.
func (v *clusterView) update(ms []wire.Member, hash uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.members, v.hash, v.seen = slices.Clone(ms), hash, time.Now()
}

// confirm records a ping answer whose members_hash matches the view's.
func (v *clusterView) confirm(hash uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.members != nil && hash == v.hash {
		v.seen = time.Now()
	}
}

// forget drops the members: a dial found them stale.
func (v *clusterView) forget() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.members = nil
}

// turn returns the next position of the rotation.
func (v *clusterView) turn() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.next++
	return v.next
}

// dialOrder returns the indexes of eps in the order Dial tries them: with
// InOrder as given; otherwise the live members in rotation, starting at
// turn, then the other endpoints in rotation too.
func dialOrder(eps []string, live map[string]bool, turn uint64, inOrder bool) []int {
	order := make([]int, len(eps))
	for i := range order {
		order[i] = i
	}
	if inOrder {
		return order
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(eps[a], eps[b]) })
	first := slices.DeleteFunc(slices.Clone(order), func(i int) bool { return !live[eps[i]] })
	rest := slices.DeleteFunc(order, func(i int) bool { return live[eps[i]] })
	return append(rotate(first, turn), rotate(rest, turn)...)
}

func rotate(s []int, by uint64) []int {
	if len(s) == 0 {
		return s
	}
	k := int(by % uint64(len(s)))
	return slices.Concat(s[k:], s[:k])
}

// failoverOrder returns the indexes of n endpoints in the order a reconnect
// after losing endpoint from tries them: with InOrder the next ones in
// turn; otherwise the live ones in random order, then the others, and from
// last.
func failoverOrder(eps []string, live map[string]bool, from int, inOrder bool) []int {
	n := len(eps)
	order := make([]int, 0, n)
	if inOrder {
		for k := 1; k <= n; k++ {
			order = append(order, (from+k)%n)
		}
		return order
	}
	for _, i := range rand.Perm(n) {
		if i != from && live[eps[i]] {
			order = append(order, i)
		}
	}
	for _, i := range rand.Perm(n) {
		if i != from && !live[eps[i]] {
			order = append(order, i)
		}
	}
	if from >= 0 && from < n {
		order = append(order, from)
	}
	return order
}

// liveMembers returns the client addresses of the members a members
// answer called alive.
func liveMembers(ms []wire.Member) map[string]bool {
	live := make(map[string]bool, len(ms))
	for _, m := range ms {
		if m.Alive && m.ClientURL != "" {
			live[m.ClientURL] = true
		}
	}
	return live
}

// memberNames maps the client addresses of ms to the members' names.
func memberNames(ms []wire.Member) map[string]string {
	names := make(map[string]string, len(ms))
	for _, m := range ms {
		if m.ClientURL != "" {
			names[m.ClientURL] = m.Name
		}
	}
	return names
}
