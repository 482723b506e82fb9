package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
)

// The session survives disconnects; States reports what it goes through and
// Context tells work guarded by the session when to stop.
func Example_sessionStates() {
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
	fmt.Println("state:", <-c.States()) // always Connected first

	// Report every later change: Disconnected and Resumed around a lost
	// connection, Jeopardy when the session may have expired, Expired,
	// Closed. The channel is closed after Closed.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for s := range c.States() {
			fmt.Println("state:", s)
		}
	}()

	// Work that only this session may do (as a lock holder, as a leader)
	// runs under c.Context(): it is cancelled once the session deadline
	// passes, before the cluster can have expired the session and handed
	// the lock to someone else.
	work := c.Context()
	if _, _, err := c.Create(work, "/owned", nil, client.Ephemeral()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("working:", work.Err() == nil)
	// Deadline says how long the session is certain to last: check that
	// enough is left before acting on what it guards.
	fmt.Println("certain for a while yet:", time.Until(c.Deadline()) > time.Second)

	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	<-watched
	fmt.Println("work stopped because:", context.Cause(work))
	// Output:
	// state: Connected
	// working: true
	// certain for a while yet: true
	// state: Closed
	// work stopped because: CLOSED: client closed
}
