package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
)

// Dial a cluster, write a node, read it back, and tell a node that does not
// exist from a failure. Outside a test, the endpoints are your cluster's
// members (arbor dev listens on 127.0.0.1:7400); here package arbortest
// runs one in process.
func Example() {
	srv, err := arbortest.New(1)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err) // UNAVAILABLE says why: connection refused, no leader, ...
	}
	defer c.Close(ctx)

	if _, _, err := c.Create(ctx, "/greeting", []byte("hello")); err != nil && !errors.Is(err, client.ErrNodeExists) {
		log.Fatal(err)
	}
	data, stat, err := c.Get(ctx, "/greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (version %d)\n", data, stat.Version)

	_, _, err = c.Get(ctx, "/missing")
	switch {
	case errors.Is(err, client.ErrNoNode):
		fmt.Println("/missing does not exist")
	case err != nil:
		log.Fatal(err)
	}
	// Output:
	// hello (version 0)
	// /missing does not exist
}

func Example_createAndGet() {
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

	if _, _, err := c.Create(ctx, "/config", []byte("v1")); err != nil {
		log.Fatal(err)
	}
	data, stat, err := c.Get(ctx, "/config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s at version %d\n", data, stat.Version)

	// Conditional update: only if nobody changed it since we read it.
	if _, err := c.Set(ctx, "/config", []byte("v2"), stat.Version); err != nil {
		log.Fatal(err)
	}
	_, err = c.Set(ctx, "/config", []byte("v3"), stat.Version)
	fmt.Println("stale write rejected:", errors.Is(err, client.ErrBadVersion))
	// Output:
	// v1 at version 0
	// stale write rejected: true
}

func Example_errors() {
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

	_, _, err = c.Get(ctx, "/missing")
	fmt.Println(errors.Is(err, client.ErrNoNode))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
	}
	// A write that fails with TIMEOUT, UNAVAILABLE or a lost connection
	// may or may not have been applied.
	fmt.Println(client.IsIndeterminate(err))
	// Output:
	// true
	// NO_NODE
	// false
}

func Example_sequentialAndChildren() {
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

	if _, _, err := c.Create(ctx, "/queue", nil); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		name, _, err := c.Create(ctx, "/queue/item-", []byte("job"), client.Sequential())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("created", name)
	}
	kids, _, err := c.Children(ctx, "/queue")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(kids)
	// Output:
	// created /queue/item-0000000000
	// created /queue/item-0000000001
	// [item-0000000000 item-0000000001]
}

func Example_multi() {
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

	// All or nothing: the check fails, so /b is not created either.
	_, err = c.Multi(ctx,
		client.OpCreate("/b", nil),
		client.OpCheck("/a", client.AnyVersion),
	)
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, "at sub-op", e.Index)
	}
	stat, _ := c.Exists(ctx, "/b")
	fmt.Println("/b exists:", stat != nil)
	// Output:
	// NO_NODE at sub-op 1
	// /b exists: false
}
