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

// Servers register themselves for as long as their session lives; callers
// watch the live set and spread their requests over it.
func ExampleServiceRegistry() {
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
	reg, err := recipe.NewServiceRegistry(c, "/services")
	if err != nil {
		log.Fatal(err)
	}

	// On each server (here both on one client): the node goes when the
	// session does; Lost says when that may have happened.
	if _, err := reg.Register(ctx, "api", recipe.Instance{ID: "api-1", Address: "10.0.0.1:8080"}); err != nil {
		log.Fatal(err)
	}
	second, err := reg.Register(ctx, "api", recipe.Instance{ID: "api-2", Address: "10.0.0.2:8080",
		Metadata: map[string]string{"zone": "b"}})
	if err != nil {
		log.Fatal(err)
	}

	// On a caller.
	w, err := reg.Watch(ctx, "api")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)
	for _, in := range <-w.Updates() {
		fmt.Println("live:", in.ID, in.Address, in.Metadata)
	}
	rr := w.RoundRobin()
	for range 3 {
		in, err := rr.Pick()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("call", in.Address)
	}

	if err := second.Deregister(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("live now:", len(<-w.Updates()))
	in, err := rr.Pick()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("call", in.Address)
	// Output:
	// live: api-1 10.0.0.1:8080 map[]
	// live: api-2 10.0.0.2:8080 map[zone:b]
	// call 10.0.0.1:8080
	// call 10.0.0.2:8080
	// call 10.0.0.1:8080
	// live now: 1
	// call 10.0.0.1:8080
}
