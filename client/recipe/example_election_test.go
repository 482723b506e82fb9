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

// Two instances of a scheduler campaign; one leads, and when it resigns
// the other takes over. Observe reports each leader once.
func ExampleElection() {
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
	a, b, watcher := dial(), dial(), dial()
	defer a.Close(ctx)
	defer b.Close(ctx)
	defer watcher.Close(ctx)

	ea := recipe.NewElection(a, "/services/scheduler/leader")
	if err := ea.Campaign(ctx, []byte("host-a:9000")); err != nil {
		log.Fatal(err)
	}
	leaders := recipe.NewElection(watcher, "/services/scheduler/leader").Observe(ctx)
	fmt.Println("leader:", string((<-leaders).Value))

	eb := recipe.NewElection(b, "/services/scheduler/leader")
	elected := make(chan error, 1)
	go func() { elected <- eb.Campaign(ctx, []byte("host-b:9000")) }()
	// Wait until b is a candidate, then hand over.
	for {
		kids, _, err := watcher.Children(ctx, "/services/scheduler/leader")
		if err != nil {
			log.Fatal(err)
		}
		if len(kids) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	tokenA := ea.Token()
	if err := ea.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-elected; err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", string((<-leaders).Value))
	fmt.Println("b's token is higher:", eb.Token() > tokenA)
	// Output:
	// leader: host-a:9000
	// leader: host-b:9000
	// b's token is higher: true
}
