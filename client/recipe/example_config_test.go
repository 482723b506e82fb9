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

// A Config follows one node holding JSON: every good write becomes the
// current value; a bad one leaves the last good value in place and is
// reported by Err.
func ExampleConfig() {
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

	type Limits struct {
		MaxConns int `json:"max_conns"`
	}
	if _, _, err := c.Create(ctx, "/limits", []byte(`{"max_conns":100}`)); err != nil {
		log.Fatal(err)
	}
	cf, err := recipe.NewConfig[Limits](ctx, c, "/limits", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cf.Close(ctx)
	fmt.Println("start:", (<-cf.Updates()).Value.MaxConns)

	if _, err := c.Set(ctx, "/limits", []byte(`{"max_conns":250}`), client.AnyVersion); err != nil {
		log.Fatal(err)
	}
	fmt.Println("update:", (<-cf.Updates()).Value.MaxConns)

	if _, err := c.Set(ctx, "/limits", []byte(`max_conns = 300`), client.AnyVersion); err != nil {
		log.Fatal(err)
	}
	for !errors.Is(cf.Err(), recipe.ErrConfigDecode) {
		select {
		case <-ctx.Done():
			log.Fatal("the bad write was never reported")
		case <-time.After(5 * time.Millisecond):
		}
	}
	v, _ := cf.Get()
	fmt.Println("after a bad write:", v.Value.MaxConns)
	// Output:
	// start: 100
	// update: 250
	// after a bad write: 250
}
