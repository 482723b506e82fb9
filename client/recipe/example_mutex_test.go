package recipe_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

// A Mutex guards a job that only one process may run at a time. The
// fencing token goes with every write the job makes, and the job stops as
// soon as Lost says the lock may be gone.
func ExampleMutex() {
	srv, err := arbortest.New(1) // outside a test: your cluster's endpoints
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

	m := recipe.NewMutex(c, "/locks/nightly-report")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	token := m.Token()
	for step := range 3 {
		select {
		case <-m.Lost():
			log.Print("lock lost; stopping before anyone else can be granted it")
			return
		default:
		}
		fmt.Printf("step %d written with token %v\n", step, token > 0)
	}
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// step 0 written with token true
	// step 1 written with token true
	// step 2 written with token true
}

// TryLock takes a lock only if nobody holds it.
func ExampleMutex_TryLock() {
	srv, err := arbortest.New(1)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() *client.Client {
		c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	defer a.Close(ctx)
	defer b.Close(ctx)

	ok, err := recipe.NewMutex(a, "/locks/x").TryLock(ctx)
	fmt.Println("a:", ok, err)
	ok, err = recipe.NewMutex(b, "/locks/x").TryLock(ctx)
	fmt.Println("b:", ok, err)
	// Output:
	// a: true <nil>
	// b: false <nil>
}

// Readers share an RWMutex; a writer waits for them.
func ExampleRWMutex() {
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

	rw := recipe.NewRWMutex(c, "/locks/config")
	if err := rw.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := rw.RLock(ctx); err != nil { // a second reader in this process
		log.Fatal(err)
	}
	fmt.Println("two readers")
	_ = rw.RUnlock(ctx)
	_ = rw.RUnlock(ctx)
	if err := rw.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("then the writer")
	_ = rw.Unlock(ctx)
	// Output:
	// two readers
	// then the writer
}
