package recipe_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

// testTimeout bounds every test's waits: a recipe that hangs fails the test
// instead of the run.
const testTimeout = 30 * time.Second

// startRecipeMember runs one member and dials n clients to it.
func startRecipeMember(t *testing.T, n int) (context.Context, []*client.Client) {
	t.Helper()
	return startRecipeCluster(t, 1, n)
}

// startRecipeCluster runs members members and dials n clients, spread
// over them. The leak check is registered first so that it runs last,
// after the clients and the members have stopped.
func startRecipeCluster(t *testing.T, members, n int) (context.Context, []*client.Client) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	srv := arbortest.StartCluster(t, members)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	eps := srv.Endpoints()
	cs := make([]*client.Client, n)
	for i := range cs {
		// Dial takes the first endpoint that answers: start each client's
		// list at another member.
		k := i % len(eps)
		c, err := client.Dial(ctx, client.Config{Endpoints: append(eps[k:], eps[:k]...)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		cs[i] = c
	}
	return ctx, cs
}

// eventually polls cond until it holds or the test's deadline passes.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// participantCount counts the participant nodes of a double barrier.
func participantCount(ctx context.Context, t *testing.T, c *client.Client, path string) int {
	t.Helper()
	kids, _, err := c.Children(ctx, path)
	if errors.Is(err, client.ErrNoNode) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range kids {
		if strings.HasPrefix(k, "p-") {
			n++
		}
	}
	return n
}

func TestBarrierHoldsWaitersUntilRemoved(t *testing.T) {
	ctx, cs := startRecipeMember(t, 3)
	b := recipe.NewBarrier(cs[0], "/jobs/nightly/barrier")

	if err := b.Wait(ctx); err != nil {
		t.Fatalf("Wait on a barrier never set: %v", err)
	}
	if err := b.Set(ctx); err != nil {
		t.Fatalf("Set (with missing parents): %v", err)
	}
	if err := b.Set(ctx); err != nil {
		t.Fatalf("Set again: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := recipe.NewBarrier(cs[1], "/jobs/nightly/barrier").Wait(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a raised barrier = %v, want the deadline", err)
	}

	done := make(chan error, 2)
	for _, c := range cs[1:] {
		go func() { done <- recipe.NewBarrier(c, "/jobs/nightly/barrier").Wait(ctx) }()
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("Wait after Remove: %v", err)
		}
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatalf("Remove again: %v", err)
	}
}

// enterAll starts Enter for each participant and returns a channel of
// their results.
func enterAll(ctx context.Context, bs ...*recipe.DoubleBarrier) <-chan error {
	done := make(chan error, len(bs))
	for _, b := range bs {
		go func() { done <- b.Enter(ctx) }()
	}
	return done
}

func leaveAll(ctx context.Context, bs ...*recipe.DoubleBarrier) <-chan error {
	done := make(chan error, len(bs))
	for _, b := range bs {
		go func() { done <- b.Leave(ctx) }()
	}
	return done
}

func expectNone(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned early (%v)", what, err)
	default:
	}
}

func expectAll(t *testing.T, done <-chan error, n int, what string) {
	t.Helper()
	for range n {
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// Three participants on three members, twice at the same path.
func TestDoubleBarrierEnterAndLeaveTogether(t *testing.T) {
	ctx, cs := startRecipeCluster(t, 3, 3)
	const path = "/compute/round"
	for round := range 2 { // the second round shows the barrier closed again
		var bs []*recipe.DoubleBarrier
		for _, c := range cs {
			bs = append(bs, recipe.NewDoubleBarrier(c, path, 3))
		}
		entered := enterAll(ctx, bs[0], bs[1])
		eventually(ctx, t, "two participants are in", func() bool { return participantCount(ctx, t, cs[0], path) == 2 })
		expectNone(t, entered, "Enter with two of three")
		if err := bs[2].Enter(ctx); err != nil {
			t.Fatalf("round %d: third Enter: %v", round, err)
		}
		expectAll(t, entered, 2, "Enter")

		left := leaveAll(ctx, bs[0], bs[1])
		// Whoever is not the lowest deletes its node before waiting.
		eventually(ctx, t, "a participant is leaving", func() bool { return participantCount(ctx, t, cs[0], path) < 3 })
		expectNone(t, left, "Leave with one participant still in")
		if err := bs[2].Leave(ctx); err != nil {
			t.Fatalf("round %d: third Leave: %v", round, err)
		}
		expectAll(t, left, 2, "Leave")
		kids, _, err := cs[0].Children(ctx, path)
		if err != nil || len(kids) != 0 {
			t.Fatalf("round %d: after everyone left, %s has %v (%v)", round, path, kids, err)
		}
	}
}

// A participant that dies before the barrier opens no longer counts: the
// barrier waits for someone to take its place.
func TestDoubleBarrierParticipantDiesBeforeOpening(t *testing.T) {
	ctx, cs := startRecipeMember(t, 4)
	const path = "/dies-early"
	a, dead := recipe.NewDoubleBarrier(cs[0], path, 3), recipe.NewDoubleBarrier(cs[1], path, 3)
	deadDone := enterAll(ctx, dead)
	aDone := enterAll(ctx, a)
	eventually(ctx, t, "two participants are in", func() bool { return participantCount(ctx, t, cs[0], path) == 2 })
	if err := cs[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deadDone; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Enter of a closed client = %v, want ErrClosed", err)
	}
	eventually(ctx, t, "the dead participant is gone", func() bool { return participantCount(ctx, t, cs[0], path) == 1 })

	c := recipe.NewDoubleBarrier(cs[2], path, 3)
	cDone := enterAll(ctx, c)
	eventually(ctx, t, "a new participant is in", func() bool { return participantCount(ctx, t, cs[0], path) == 2 })
	expectNone(t, aDone, "Enter with two live participants of three")
	if err := recipe.NewDoubleBarrier(cs[3], path, 3).Enter(ctx); err != nil {
		t.Fatal(err)
	}
	expectAll(t, aDone, 1, "Enter")
	expectAll(t, cDone, 1, "Enter")
}

// A participant that dies after the barrier opened counts as having left.
func TestDoubleBarrierParticipantDiesInside(t *testing.T) {
	ctx, cs := startRecipeMember(t, 3)
	const path = "/dies-inside"
	var bs []*recipe.DoubleBarrier
	for _, c := range cs {
		bs = append(bs, recipe.NewDoubleBarrier(c, path, 3))
	}
	expectAll(t, enterAll(ctx, bs...), 3, "Enter")
	if err := cs[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bs[2].Lost():
	case <-ctx.Done():
		t.Fatal("Lost not closed after the participant's client closed")
	}
	select {
	case <-bs[0].Lost():
		t.Fatal("a live participant's Lost is closed")
	default:
	}
	expectAll(t, leaveAll(ctx, bs[0], bs[1]), 2, "Leave")
}

func TestDoubleBarrierEnterCancelledWithdraws(t *testing.T) {
	ctx, cs := startRecipeMember(t, 1)
	const path = "/withdraw"
	b := recipe.NewDoubleBarrier(cs[0], path, 2)
	if b.Lost() != nil {
		t.Fatal("Lost before Enter is not nil")
	}
	ectx, cancel := context.WithCancel(ctx)
	done := enterAll(ectx, b)
	eventually(ctx, t, "the participant is in", func() bool { return participantCount(ctx, t, cs[0], path) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Enter = %v", err)
	}
	if n := participantCount(ctx, t, cs[0], path); n != 0 {
		t.Fatalf("%d participants after a cancelled Enter, want it withdrawn", n)
	}
	select {
	case <-b.Lost():
	default:
		t.Fatal("Lost after a failed Enter is not closed")
	}

	// Entering twice is refused, and Leave ends the membership.
	solo := recipe.NewDoubleBarrier(cs[0], "/solo", 1)
	if err := solo.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	if err := solo.Enter(ctx); err == nil {
		t.Fatal("second Enter before Leave: no error")
	}
	if err := solo.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := solo.Leave(ctx); !errors.Is(err, recipe.ErrNotEntered) {
		t.Fatalf("second Leave = %v, want ErrNotEntered", err)
	}
}
