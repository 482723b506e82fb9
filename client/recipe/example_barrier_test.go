package recipe_test

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

// A deploy tool raises a barrier; workers wait at it and start once it is
// removed. Outside a test, the endpoints are your cluster's members; here
// package arbortest runs one in process.
func ExampleBarrier() {
	srv, err := arbortest.New(1)
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

	gate := recipe.NewBarrier(c, "/deploy/gate")
	if err := gate.Set(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("gate up")

	started := make(chan error)
	go func() { started <- gate.Wait(ctx) }() // a worker, on any client

	if err := gate.Remove(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-started; err != nil {
		log.Fatal(err)
	}
	fmt.Println("worker started")
	// Output:
	// gate up
	// worker started
}

// Three workers, each with its own session, start a computation together
// and finish it together. A worker whose session is lost mid-way (Lost) no
// longer counts, and stops.
func ExampleDoubleBarrier() {
	srv, err := arbortest.New(1)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const workers = 3
	var wg sync.WaitGroup
	steps := make([][]string, workers)
	for i := range workers {
		c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close(ctx)
		b := recipe.NewDoubleBarrier(c, "/compute/round-1", workers)
		wg.Go(func() {
			if err := b.Enter(ctx); err != nil {
				log.Fatal(err)
			}
			select {
			case <-b.Lost():
				return // the others may have moved on without us
			default:
				steps[i] = append(steps[i], "worked")
			}
			if err := b.Leave(ctx); err != nil {
				log.Fatal(err)
			}
			steps[i] = append(steps[i], "left")
		})
	}
	wg.Wait()
	for i, s := range steps {
		fmt.Println("worker", i, s)
	}
	// Output:
	// worker 0 [worked left]
	// worker 1 [worked left]
	// worker 2 [worked left]
}
