package servertest_test

import (
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
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := pipelineCreates(ws, i, per, 64); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per*clients)/elapsed.Seconds(), "ops/s")
		})
	}
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
	slots := make(chan struct{}, window)
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			slots <- struct{}{}
			req := wire.Request{ID: uint64(i + 2), Op: wire.OpCreate, Path: fmt.Sprintf("/c%d-", client), Sequential: true, Data: []byte("0123456789abcdef")}
			if err := ws.WriteJSON(req); err != nil {
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
			return fmt.Errorf("create %d: id %d error %+v", i, r.ID, r.Error)
		}
		<-slots
	}
	return <-sendErr
}
