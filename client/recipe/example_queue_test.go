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

// A producer queues jobs and a consumer takes them, oldest first. Any
// number of consumers may take from the same queue: each job goes to one
// of them.
func ExampleQueue() {
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

	jobs := recipe.NewQueue(c, "/jobs/resize")
	for _, img := range []string{"a.png", "b.png", "c.png"} {
		if _, err := jobs.Put(ctx, []byte(img)); err != nil {
			log.Fatal(err)
		}
	}
	for range 3 {
		// Take waits while the queue is empty. It deletes the job before
		// returning it: a consumer that crashes now loses the job.
		data, err := jobs.Take(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("resizing", string(data))
	}
	// Output:
	// resizing a.png
	// resizing b.png
	// resizing c.png
}
