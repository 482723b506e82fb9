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

// A TreeCache keeps a subtree in memory: reads are local and always show
// the subtree at one zxid, a multi either wholly or not at all.
func ExampleTreeCache() {
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

	if _, _, err := c.Create(ctx, "/routes", nil); err != nil {
		log.Fatal(err)
	}
	tc, err := recipe.NewTreeCache(ctx, c, "/routes")
	if err != nil {
		log.Fatal(err)
	}
	defer tc.Close(ctx)

	if _, err := c.Multi(ctx,
		client.OpCreate("/routes/api", []byte("10.0.0.1")),
		client.OpCreate("/routes/web", []byte("10.0.0.2"))); err != nil {
		log.Fatal(err)
	}
	if err := tc.Sync(ctx); err != nil { // only to show the multi at once
		log.Fatal(err)
	}
	kids, _ := tc.Children("/routes")
	for _, k := range kids {
		n, _ := tc.Get("/routes/" + k)
		fmt.Printf("%s -> %s (version %d)\n", k, n.Data, n.Stat.Version)
	}
	// Output:
	// api -> 10.0.0.1 (version 0)
	// web -> 10.0.0.2 (version 0)
}
