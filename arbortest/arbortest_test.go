package arbortest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func TestStartServesAtOnce(t *testing.T) {
	srv := arbortest.Start(t)
	if eps := srv.Endpoints(); len(eps) != 1 || eps[0] != srv.Addr() {
		t.Fatalf("Endpoints %v, Addr %s", eps, srv.Addr())
	}
	resp, err := http.Get("http://" + srv.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz right after Start: %s", resp.Status)
	}
	c := dial(t, srv.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := c.Create(ctx, "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/b"); !errors.Is(err, client.ErrNoNode) {
		t.Fatalf("Get of a missing node: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// Every member of a cluster serves, and a write through one is read
// through another.
func TestStartClusterOfThree(t *testing.T) {
	srv := arbortest.StartCluster(t, 3)
	eps := srv.Endpoints()
	if len(eps) != 3 {
		t.Fatalf("Endpoints %v", eps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := dial(t, eps[0]).Create(ctx, "/shared", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if data, _, err := dial(t, ep).Get(ctx, "/shared"); err != nil || string(data) != "v" {
			t.Fatalf("Get through %s: %q, %v", ep, data, err)
		}
	}
	ms, err := dial(t, eps[1]).Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("Members: %v, %v", ms, err)
	}
}

// New and Close, for code without a testing.TB: Close stops every member
// (goleak in TestMain checks that nothing is left) and may be called twice.
func TestNewClose(t *testing.T) {
	if _, err := arbortest.New(0); err == nil {
		t.Fatal("New(0) succeeded")
	}
	srv, err := arbortest.New(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, client.Config{Endpoints: []string{addr}}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Dial after Close: %v", err)
	}
}
