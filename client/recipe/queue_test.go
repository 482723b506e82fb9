package recipe_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

func TestQueueIsFIFOForOneConsumer(t *testing.T) {
	ctx, cs := startRecipeMember(t, 1)
	q := recipe.NewQueue(cs[0], "/work/queue")
	var want []string
	for i := range 20 {
		item := fmt.Sprintf("job-%02d", i)
		if _, err := q.Put(ctx, []byte(item)); err != nil {
			t.Fatal(err)
		}
		want = append(want, item)
	}
	// Other children of the queue are not items.
	if _, _, err := cs[0].Create(ctx, "/work/queue/config", []byte("not an item")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range want {
		data, err := q.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(data))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("took %v, want %v", got, want)
	}
	kids, _, err := cs[0].Children(ctx, "/work/queue")
	if err != nil || !slices.Equal(kids, []string{"config"}) {
		t.Fatalf("queue left with %v (%v)", kids, err)
	}

	// An item with a child is not one Put made: a clear error, not a spin.
	if _, err := q.Put(ctx, nil); err != nil {
		t.Fatal(err)
	}
	kids, _, _ = cs[0].Children(ctx, "/work/queue")
	if _, _, err := cs[0].Create(ctx, "/work/queue/"+kids[len(kids)-1]+"/child", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Take(ctx); !errors.Is(err, client.ErrNotEmpty) {
		t.Fatalf("Take of an item with a child = %v, want ErrNotEmpty", err)
	}
}

// Five consumers, each on its own session and spread over three members,
// race two producers for 200 items: every item is taken exactly once, and
// each consumer gets a producer's items in the order they were put.
func TestQueueEveryItemTakenOnce(t *testing.T) {
	const consumers, producers, perProducer = 5, 2, 100
	ctx, cs := startRecipeCluster(t, 3, consumers+producers)
	const path = "/jobs"

	var wg sync.WaitGroup
	taken := make([][]string, consumers)
	errs := make(chan error, consumers+producers)
	remaining := make(chan struct{}, producers*perProducer)
	for range producers * perProducer {
		remaining <- struct{}{}
	}
	for i := range consumers {
		q := recipe.NewQueue(cs[i], path)
		wg.Go(func() {
			for {
				select {
				case <-remaining:
				default:
					return // every item has a taker
				}
				data, err := q.Take(ctx)
				if err != nil {
					errs <- err
					return
				}
				taken[i] = append(taken[i], string(data))
			}
		})
	}
	for p := range producers {
		q := recipe.NewQueue(cs[consumers+p], path)
		wg.Go(func() {
			for n := range perProducer {
				if _, err := q.Put(ctx, fmt.Appendf(nil, "p%d-%03d", p, n)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seen := map[string]int{}
	for i, items := range taken {
		last := map[string]string{} // producer -> last item this consumer took from it
		for _, item := range items {
			seen[item]++
			prod, _, _ := strings.Cut(item, "-")
			if item <= last[prod] {
				t.Errorf("consumer %d took %s after %s", i, item, last[prod])
			}
			last[prod] = item
		}
	}
	if len(seen) != producers*perProducer {
		t.Errorf("%d distinct items taken, want %d", len(seen), producers*perProducer)
	}
	for item, n := range seen {
		if n != 1 {
			t.Errorf("%s taken %d times", item, n)
		}
	}
}

func TestQueueTakeWaitsForAPut(t *testing.T) {
	ctx, cs := startRecipeMember(t, 2)
	consumer, producer := recipe.NewQueue(cs[0], "/later/queue"), recipe.NewQueue(cs[1], "/later/queue")
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := consumer.Take(ctx) // the queue does not exist yet
		done <- result{data, err}
	}()
	if _, err := producer.Put(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || string(r.data) != "first" {
		t.Fatalf("Take = %q, %v", r.data, r.err)
	}

	// Now the queue exists and is empty.
	go func() {
		data, err := consumer.Take(ctx)
		done <- result{data, err}
	}()
	if _, err := producer.Put(ctx, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || string(r.data) != "second" {
		t.Fatalf("Take = %q, %v", r.data, r.err)
	}

	tctx, cancel := context.WithCancel(ctx)
	go func() {
		data, err := consumer.Take(tctx)
		done <- result{data, err}
	}()
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled Take = %q, %v", r.data, r.err)
	}
}

func TestRecipesRefuseBadPaths(t *testing.T) {
	ctx, cs := startRecipeMember(t, 1)
	c := cs[0]
	for _, path := range []string{"", "jobs", "/", "/jobs/", "/a//b"} {
		calls := map[string]error{
			"Barrier.Set":         recipe.NewBarrier(c, path).Set(ctx),
			"Barrier.Wait":        recipe.NewBarrier(c, path).Wait(ctx),
			"Barrier.Remove":      recipe.NewBarrier(c, path).Remove(ctx),
			"DoubleBarrier.Enter": recipe.NewDoubleBarrier(c, path, 1).Enter(ctx),
		}
		_, calls["Queue.Put"] = recipe.NewQueue(c, path).Put(ctx, nil)
		_, calls["Queue.Take"] = recipe.NewQueue(c, path).Take(ctx)
		for name, err := range calls {
			if err == nil {
				t.Errorf("%s at %q: no error", name, path)
			}
		}
	}
	if err := recipe.NewBarrier(nil, "/b").Set(ctx); err == nil {
		t.Error("Set without a client: no error")
	}
	if err := recipe.NewDoubleBarrier(c, "/db", 0).Enter(ctx); err == nil || !strings.Contains(err.Error(), "count 0") {
		t.Errorf("Enter with count 0 = %v", err)
	}
	if err := recipe.NewDoubleBarrier(c, "/db", 2).Leave(ctx); !errors.Is(err, recipe.ErrNotEntered) {
		t.Errorf("Leave before Enter = %v, want ErrNotEntered", err)
	}
}
