package servertest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest"
)

// blackhole is a network between a client and the cluster that can be cut:
// once cut, bytes written vanish, reads wait, and new dials fail, as behind
// a partition that drops packets rather than refusing them.
type blackhole struct {
	mu    sync.Mutex
	cut   bool
	conns []*holeConn
}

type holeConn struct {
	net.Conn
	h *blackhole
}

func (h *blackhole) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	cut := h.cut
	h.mu.Unlock()
	if cut {
		<-ctx.Done() // a dial into a black hole times out
		return nil, ctx.Err()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &holeConn{Conn: nc, h: h}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c, nil
}

func (h *blackhole) isCut() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cut
}

func (h *blackhole) partition() {
	h.mu.Lock()
	h.cut = true
	h.mu.Unlock()
}

func (c *holeConn) Write(b []byte) (int, error) {
	if c.h.isCut() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *holeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.h.isCut() && err == nil {
		// What arrives after the cut is lost; keep waiting like a
		// connection whose peer went silent.
		for {
			if _, err := c.Conn.Read(b); err != nil {
				return 0, err
			}
		}
	}
	return n, err
}

// A client partitioned away from the whole cluster says its session is in
// jeopardy (state and cancelled Context) before the cluster expires the
// session.
func TestJeopardyBeforeExpiry(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	hole := &blackhole{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: c.Addrs(), SessionTimeout: 2 * time.Second,
		NetDialContext: hole.dial, DialTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(ctx)
	if _, _, err := cl.Create(ctx, "/lease", nil, client.Ephemeral()); err != nil {
		t.Fatal(err)
	}
	// Let a few pings confirm renewals, so the deadline is a real one.
	time.Sleep(1500 * time.Millisecond)
	if err := cl.Context().Err(); err != nil {
		t.Fatalf("in jeopardy before any partition: %v", err)
	}
	lease := cl.Context()

	jeopardy := make(chan time.Time, 1)
	go func() {
		<-lease.Done()
		jeopardy <- time.Now()
	}()
	hole.partition()
	cut := time.Now()

	obs := connect(t, c.Addr(0))
	at := waitGone(t, obs, "/lease", 10*time.Second)
	var j time.Time
	select {
	case j = <-jeopardy:
	default:
		t.Fatalf("the cluster expired the session %v after the partition, and the client had not said it was in jeopardy", at.Sub(cut))
	}
	if !j.Before(at) {
		t.Fatalf("jeopardy at +%v, expiry seen at +%v", j.Sub(cut), at.Sub(cut))
	}
	if cause := context.Cause(lease); !errors.Is(cause, client.ErrJeopardy) {
		t.Errorf("cause %v, want ErrJeopardy", cause)
	}
	if s := cl.State(); s != client.Jeopardy {
		t.Errorf("state %v, want Jeopardy", s)
	}
	t.Logf("partition at 0; jeopardy at +%v; expiry seen at +%v", j.Sub(cut).Round(time.Millisecond), at.Sub(cut).Round(time.Millisecond))
}
