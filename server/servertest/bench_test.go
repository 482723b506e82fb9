package servertest_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server/servertest"
)

// BenchmarkServerCreate measures creates/s through raw WebSocket clients
// that pipeline up to window requests each, spread over the members of a
// 3-member cluster with fsync on.
func BenchmarkServerCreate(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			c := servertest.NewCluster(b, 3, servertest.Fsync())
			runClients(b, c, clients, func(ws *websocket.Conn, client, n int) error {
				return pipelineCreates(ws, client, n, 64)
			})
		})
	}
}

// runClients connects clients raw WebSocket clients spread over c's
// members, runs drive on each with its share of b.N and reports ops/s.
func runClients(b *testing.B, c *servertest.Cluster, clients int, drive func(ws *websocket.Conn, client, n int) error) {
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = benchConnect(b, c.Addr(i%c.Size()))
	}
	per := (b.N + clients - 1) / clients
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, ws := range conns {
		wg.Go(func() {
			if err := drive(ws, i, per); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(per*clients)/elapsed.Seconds(), "ops/s")
}

func benchConnect(b *testing.B, addr string) *websocket.Conn {
	b.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+wire.EndpointPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	b.Cleanup(func() { ws.Close() })
	if err := ws.WriteJSON(wire.Request{ID: 1, Op: wire.OpHello, TimeoutMs: 30000}); err != nil {
		b.Fatal(err)
	}
	var r wire.Response
	if err := ws.ReadJSON(&r); err != nil || !r.OK {
		b.Fatalf("hello: %v %+v", err, r.Error)
	}
	return ws
}

// pipelineCreates sends n sequential creates under /c<client>- with at most
// window in flight and checks every answer.
func pipelineCreates(ws *websocket.Conn, client, n, window int) error {
	return pipeline(ws, n, window, func(i int) wire.Request {
		return wire.Request{ID: uint64(i + 2), Op: wire.OpCreate, Path: fmt.Sprintf("/c%d-", client), Sequential: true, Data: []byte("0123456789abcdef")}
	}, func(r *wire.Response) error { return nil })
}

// pipeline sends n requests made by req with at most window in flight and
// checks that every answer is a success in order and passes check.
func pipeline(ws *websocket.Conn, n, window int, req func(i int) wire.Request, check func(*wire.Response) error) error {
	slots := make(chan struct{}, window)
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			slots <- struct{}{}
			if err := ws.WriteJSON(req(i)); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for i := range n {
		var r wire.Response
		if err := ws.ReadJSON(&r); err != nil {
			return err
		}
		if !r.OK || r.ID != uint64(i+2) {
			return fmt.Errorf("request %d: id %d error %+v", i, r.ID, r.Error)
		}
		if err := check(&r); err != nil {
			return err
		}
		<-slots
	}
	return <-sendErr
}

// BenchmarkServerGet measures reads/s (linearizable and local) of a 100-byte
// value through raw WebSocket clients pipelining up to 64 requests each,
// spread over the members of a 3-member cluster with fsync on.
func BenchmarkServerGet(b *testing.B) {
	for _, local := range []bool{false, true} {
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("local=%v/clients=%d", local, clients), func(b *testing.B) {
				c := servertest.NewCluster(b, 3, servertest.Fsync())
				value := bytes.Repeat([]byte("v"), 100)
				setup := benchConnect(b, c.Addr(0))
				if err := pipeline(setup, 1, 1, func(int) wire.Request {
					return wire.Request{ID: 2, Op: wire.OpCreate, Path: "/bench", Data: value}
				}, func(*wire.Response) error { return nil }); err != nil {
					b.Fatal(err)
				}
				runClients(b, c, clients, func(ws *websocket.Conn, _, n int) error {
					return pipeline(ws, n, 64, func(i int) wire.Request {
						return wire.Request{ID: uint64(i + 2), Op: wire.OpGet, Path: "/bench", Local: local}
					}, func(r *wire.Response) error {
						if !bytes.Equal(r.Data, value) {
							return fmt.Errorf("get returned %q", r.Data)
						}
						return nil
					})
				})
			})
		}
	}
}
