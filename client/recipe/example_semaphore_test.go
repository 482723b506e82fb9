package recipe_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

// At most two encoders run at once, in whatever processes they live. Each
// hands its permit's token to the storage it writes to, which refuses a
// token smaller than one it has seen: a holder whose permit was lost (and
// given to someone else) cannot write late.
func ExampleSemaphore() {
	srv, err := arbortest.New(1) // a real member, in process, for the example
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	// Every participant says 2; one that says otherwise is refused with
	// recipe.ErrPermitsMismatch.
	sem, err := recipe.NewSemaphore(c, "/jobs/encoders", 2)
	if err != nil {
		log.Fatal(err)
	}
	first, err := sem.Acquire(ctx) // waits while both permits are held
	if err != nil {
		log.Fatal(err)
	}
	second, err := sem.Acquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	_, err = sem.TryAcquire(ctx)
	fmt.Println("a third now:", errors.Is(err, recipe.ErrNoPermit))

	if err := first.Release(ctx); err != nil {
		log.Fatal(err)
	}
	third, err := sem.TryAcquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tokens grow:", first.Token() < second.Token() && second.Token() < third.Token())

	// Work done under a permit stops once Lost is closed: the session is in
	// jeopardy or over, or the permit's node was deleted.
	select {
	case <-third.Lost():
		fmt.Println("lost: stop writing")
	default:
		fmt.Println("held: write with token", third.Token() > 0)
	}
	for _, p := range []*recipe.Permit{second, third} {
		if err := p.Release(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// a third now: true
	// tokens grow: true
	// held: write with token true
}
