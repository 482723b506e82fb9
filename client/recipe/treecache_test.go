package recipe_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
	"github.com/arbor-db/arbor/server/servertest"
)

func dialTest(t *testing.T, ctx context.Context, endpoints []string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, client.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// readTree reads the subtree under root node by node; the caller makes
// sure nobody writes meanwhile.
func readTree(t *testing.T, ctx context.Context, c *client.Client, root string) []recipe.TreeNode {
	t.Helper()
	var out []recipe.TreeNode
	var walk func(p string)
	walk = func(p string) {
		data, st, err := c.Get(ctx, p)
		if errors.Is(err, client.ErrNoNode) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recipe.TreeNode{Path: p, Data: data, Stat: recipe.TreeStat{
			Czxid: st.Czxid, Mzxid: st.Mzxid, Pzxid: st.Pzxid,
			Version: st.Version, Cversion: st.Cversion, NumChildren: st.NumChildren}})
		kids, _, err := c.Children(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			walk(p + "/" + k)
		}
	}
	walk(root)
	return out
}

// sameTree fails the test unless the cache, once synced, equals a fresh
// read of its subtree.
func sameTree(t *testing.T, ctx context.Context, tc *recipe.TreeCache, c *client.Client, root string) {
	t.Helper()
	if err := tc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, z := tc.Snapshot()
	want := readTree(t, ctx, c, root)
	// Nobody writes now: the fresh read is the tree at the cache's zxid.
	if len(got) != len(want) {
		t.Fatalf("cache has %d nodes at zxid %d, the tree %d:\ncache %v\ntree  %v", len(got), z, len(want), paths(got), paths(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Path != w.Path || string(g.Data) != string(w.Data) || g.Stat != w.Stat {
			t.Fatalf("node %d differs at zxid %d:\ncache %s %q %+v\ntree  %s %q %+v", i, z, g.Path, g.Data, g.Stat, w.Path, w.Data, w.Stat)
		}
	}
	for _, n := range got {
		kids, _ := tc.Children(n.Path)
		if int64(len(kids)) != n.Stat.NumChildren {
			t.Fatalf("%s: %d children listed, stat says %d", n.Path, len(kids), n.Stat.NumChildren)
		}
	}
}

func paths(ns []recipe.TreeNode) []string {
	var ps []string
	for _, n := range ns {
		ps = append(ps, n.Path)
	}
	return ps
}

// treeWriter makes random changes under root: creates, sets, deletes
// (also recursive) and multis. Every multi also sets root/pair/a and
// root/pair/b to one new value, so a cache that showed half a multi
// would show them differ.
type treeWriter struct {
	c     *client.Client
	root  string
	rng   *rand.Rand
	nodes []string // created by the writer, maybe deleted since
	gen   int
}

func (w *treeWriter) pick() string {
	if len(w.nodes) == 0 {
		return w.root + "/n0"
	}
	return w.nodes[w.rng.IntN(len(w.nodes))]
}

func (w *treeWriter) step(ctx context.Context) error {
	var err error
	switch k := w.rng.IntN(10); {
	case k < 3:
		parent := w.root
		if w.rng.IntN(2) == 0 {
			parent = w.pick()
		}
		p := fmt.Sprintf("%s/n%d", parent, len(w.nodes))
		if strings.Count(p, "/") > 5 {
			p = fmt.Sprintf("%s/n%d", w.root, len(w.nodes))
		}
		w.nodes = append(w.nodes, p)
		_, _, err = w.c.Create(ctx, p, []byte("c"))
	case k < 6:
		_, err = w.c.Set(ctx, w.pick(), fmt.Appendf(nil, "s%d", w.rng.IntN(100)), client.AnyVersion)
	case k < 7:
		err = w.c.Delete(ctx, w.pick(), client.AnyVersion, client.Recursive())
	case k < 8:
		err = w.c.Delete(ctx, w.pick(), client.AnyVersion)
	default:
		w.gen++
		v := fmt.Appendf(nil, "g%d", w.gen)
		p := fmt.Sprintf("%s/m%d", w.root, w.gen)
		_, err = w.c.Multi(ctx,
			client.OpSet(w.root+"/pair/a", v, client.AnyVersion),
			client.OpCreate(p, v),
			client.OpCreate(p+"/x", v),
			client.OpSet(w.root+"/pair/b", v, client.AnyVersion),
			client.OpDelete(p+"/x", client.AnyVersion))
	}
	if errors.Is(err, client.ErrNoNode) || errors.Is(err, client.ErrNodeExists) || errors.Is(err, client.ErrNotEmpty) {
		return nil // the random pick did not fit: a refused change changes nothing
	}
	return err
}

func setupPair(t *testing.T, ctx context.Context, c *client.Client, root string) {
	t.Helper()
	for _, p := range []string{root, root + "/pair", root + "/pair/a", root + "/pair/b"} {
		if _, _, err := c.Create(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// watchPairs checks on every change that the pair is whole, until the
// cache ends; it returns how many changes it saw.
func watchPairs(t *testing.T, tc *recipe.TreeCache, root string) <-chan int {
	seen := make(chan int, 1)
	go func() {
		n := 0
		for range tc.Changes() {
			n++
			snap, z := tc.Snapshot()
			var a, b string
			for _, nd := range snap {
				switch nd.Path {
				case root + "/pair/a":
					a = string(nd.Data)
				case root + "/pair/b":
					b = string(nd.Data)
				}
			}
			if a != b {
				t.Errorf("at zxid %d the cache shows half a multi: a=%q b=%q", z, a, b)
			}
		}
		seen <- n
	}()
	return seen
}

func TestTreeCacheFollowsWriter(t *testing.T) {
	srv := arbortest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eps := srv.Endpoints()
	reader := dialTest(t, ctx, eps)
	writer := dialTest(t, ctx, append(eps[1:], eps[0]))
	const root = "/tc"
	setupPair(t, ctx, writer, root)

	tc, err := recipe.NewTreeCache(ctx, reader, root)
	if err != nil {
		t.Fatal(err)
	}
	seen := watchPairs(t, tc, root)
	w := &treeWriter{c: writer, root: root, rng: rand.New(rand.NewPCG(1, 2))}
	for range 300 {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sameTree(t, ctx, tc, writer, root)
	if err := tc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := <-seen; n == 0 {
		t.Error("no change was reported")
	}
	if !errors.Is(tc.Err(), client.ErrWatchClosed) {
		t.Errorf("Err after Close = %v, want ErrWatchClosed", tc.Err())
	}
}

// The cache starts while the writer writes: the reads of its start are
// spread over many zxids.
func TestTreeCacheStartsDuringWrites(t *testing.T) {
	srv := arbortest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reader := dialTest(t, ctx, srv.Endpoints())
	writer := dialTest(t, ctx, srv.Endpoints())
	const root = "/busy"
	setupPair(t, ctx, writer, root)
	w := &treeWriter{c: writer, root: root, rng: rand.New(rand.NewPCG(3, 4))}
	for range 100 {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		for range 200 {
			if err := w.step(ctx); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	tc, err := recipe.NewTreeCache(ctx, reader, root)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close(ctx)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	sameTree(t, ctx, tc, writer, root)
}

// The member the cache's client is on stops in the middle of the writes:
// the client resumes on another member and registers the watch again
// since its last event.
func TestTreeCacheAcrossReconnect(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	eps := cl.Addrs()
	reader := dialTest(t, ctx, eps)
	on := -1
	for i := range cl.Size() {
		if cl.Name(i) == reader.Server() {
			on = i
		}
	}
	if on < 0 {
		t.Fatalf("reader is on %q, not a member", reader.Server())
	}
	other := (on + 1) % len(eps)
	writer := dialTest(t, ctx, []string{eps[other], eps[(other+1)%len(eps)]})
	const root = "/moving"
	setupPair(t, ctx, writer, root)
	tc, err := recipe.NewTreeCache(ctx, reader, root)
	if err != nil {
		t.Fatal(err)
	}
	seen := watchPairs(t, tc, root)
	w := &treeWriter{c: writer, root: root, rng: rand.New(rand.NewPCG(5, 6))}
	for i := range 300 {
		if i == 100 {
			cl.Stop(on)
		}
		if i == 250 {
			cl.Restart(on)
		}
		if err := w.step(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	sameTree(t, ctx, tc, writer, root)
	if reader.Server() == cl.Name(on) {
		t.Logf("reader is back on %s", reader.Server())
	}
	if err := tc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-seen
}

// A root that does not exist yet is cached as empty, and then followed.
func TestTreeCacheMissingRoot(t *testing.T) {
	srv := arbortest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialTest(t, ctx, srv.Endpoints())
	tc, err := recipe.NewTreeCache(ctx, c, "/later")
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close(ctx)
	if snap, _ := tc.Snapshot(); len(snap) != 0 {
		t.Fatalf("snapshot of a missing root = %v", paths(snap))
	}
	if _, _, err := c.Create(ctx, "/later", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/later/y", nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, ctx, tc, c, "/later")
	if kids, ok := tc.Children("/later"); !ok || !slices.Equal(kids, []string{"y"}) {
		t.Fatalf("Children = %v, %v", kids, ok)
	}
}
