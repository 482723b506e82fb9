package recipe_test

import (
	"context"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

// Leadership passes when the leader resigns or its session ends; Observe
// reports each leader once, in order.
func TestElectionHandsOver(t *testing.T) {
	srv := arbortest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	obs := recipe.NewElection(dialTest(t, context.Background(), srv.Endpoints()), "/e").Observe(ctx)
	var cs []*client.Client
	var es []*recipe.Election
	for range 3 {
		c := dialTest(t, context.Background(), srv.Endpoints())
		cs = append(cs, c)
		es = append(es, recipe.NewElection(c, "/e"))
	}
	if err := es[0].Campaign(ctx, []byte("0")); err != nil {
		t.Fatal(err)
	}
	next := func(want string) client.LeaderInfo {
		t.Helper()
		select {
		case l := <-obs:
			if string(l.Value) != want {
				t.Fatalf("observed leader %q, want %q", l.Value, want)
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatalf("no leader observed, want %q", want)
		}
		return client.LeaderInfo{}
	}
	l0 := next("0")
	elected := make(chan int, 2)
	for i := 1; i < 3; i++ {
		go func() {
			if err := es[i].Campaign(ctx, []byte{byte('0' + i)}); err == nil {
				elected <- i
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if kids, _, _ := cs[0].Children(ctx, "/e"); len(kids) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("candidates did not queue")
		}
	}
	lost := es[0].Lost()
	if err := es[0].Resign(ctx); err != nil {
		t.Fatal(err)
	}
	<-lost
	first := <-elected
	l1 := next(string(rune('0' + first)))
	if l1.Token <= l0.Token {
		t.Fatalf("token %d after %d", l1.Token, l0.Token)
	}
	// The leader's session ends: the last candidate takes over.
	_ = cs[first].Close(ctx)
	second := <-elected
	if second == first {
		t.Fatal("elected twice")
	}
	next(string(rune('0' + second)))
	select {
	case l := <-obs:
		t.Fatalf("an extra report %+v", l)
	case <-time.After(200 * time.Millisecond):
	}
}
