package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
)

// A persistent watch reports every change of a subtree once, in order,
// across reconnections; a read with WatchOnce reports the next change of
// one node.
func ExampleClient_Watch() {
	srv, err := arbortest.New(1)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ctx)

	if _, _, err := c.Create(ctx, "/config", nil); err != nil {
		fmt.Println(err)
		return
	}
	w, err := c.Watch(ctx, "/config", client.Recursive())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(ctx)

	var next <-chan client.WatchEvent
	if _, _, err := c.Get(ctx, "/config", client.WatchOnce(&next)); err != nil {
		fmt.Println(err)
		return
	}

	c.Create(ctx, "/config/db", []byte("primary"))
	c.Set(ctx, "/config/db", []byte("replica"), client.AnyVersion)
	c.Set(ctx, "/config", []byte("v2"), client.AnyVersion)
	for range 3 {
		ev := <-w.Events()
		fmt.Printf("%s %s %s\n", ev.Type, ev.Path, ev.Data)
	}
	ev := <-next
	fmt.Println("once:", ev.Type, ev.Path)
	// Output:
	// created /config/db primary
	// data /config/db replica
	// data /config v2
	// once: data /config
}

// Sync says up to which zxid a watch's events have all arrived: after it,
// draining Events without waiting gives every change up to that zxid, so a
// cache built from the events is exact there (recipe.TreeCache does this).
func ExampleWatcher_Sync() {
	srv, err := arbortest.New(1)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ctx)

	if _, _, err := c.Create(ctx, "/flags", nil); err != nil {
		fmt.Println(err)
		return
	}
	w, err := c.Watch(ctx, "/flags", client.Recursive())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(ctx)
	for _, name := range []string{"a", "b", "c"} {
		c.Create(ctx, "/flags/"+name, []byte("on"))
	}
	z, err := w.Sync(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for drained := false; !drained; {
		select {
		case ev := <-w.Events():
			fmt.Println(ev.Type, ev.Path, ev.Zxid <= z)
		default:
			drained = true // nothing waits: every event up to z was taken
		}
	}
	// Output:
	// created /flags/a true
	// created /flags/b true
	// created /flags/c true
}
