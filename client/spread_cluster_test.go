package client_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest"
)

// Clients given one member of three spread their sessions over all three,
// evenly, and those of a member that stops resume on the other two.
func TestSessionsSpreadFromOneEndpoint(t *testing.T) {
	cl := servertest.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := client.Config{Endpoints: []string{cl.Addr(0)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	dial := func() *client.Client {
		t.Helper()
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	first := dial()
	if first.Server() != cl.Name(0) {
		t.Fatalf("the first session is on %s, want the one endpoint given, %s", first.Server(), cl.Name(0))
	}
	for deadline := time.Now().Add(10 * time.Second); len(first.Endpoints()) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("endpoints %v: the first client did not learn the members", first.Endpoints())
		}
		time.Sleep(20 * time.Millisecond)
	}
	const n = 45
	clients := []*client.Client{first}
	on := map[string]int{first.Server(): 1}
	for range n {
		c := dial()
		clients = append(clients, c)
		on[c.Server()]++
	}
	for i := range cl.Size() {
		if got := on[cl.Name(i)]; got < n/3 || got > n/3+2 {
			t.Fatalf("sessions per member %v, want %d to %d on each", on, n/3, n/3+2)
		}
	}

	cl.Stop(1)
	moved := map[string]int{}
	for _, c := range clients {
		if _, err := c.Exists(ctx, "/"); err != nil {
			t.Fatalf("session %s after %s stopped: %v", c.Session(), cl.Name(1), err)
		}
		if c.Server() == cl.Name(1) {
			t.Fatalf("session %s still on %s", c.Session(), cl.Name(1))
		}
		moved[c.Server()]++
	}
	if moved[cl.Name(0)] <= on[cl.Name(0)] || moved[cl.Name(2)] <= on[cl.Name(2)] {
		t.Fatalf("sessions per member %v after %s stopped (before: %v): want both others to take some", moved, cl.Name(1), on)
	}
}
