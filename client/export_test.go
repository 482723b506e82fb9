package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/arbor-db/arbor/server"
)

// StartExampleServer runs a real single-member cluster in process, on a
// temporary directory and free loopback ports, for the package's examples.
// It returns the client address and a function that stops the member.
func StartExampleServer() (addr string, stop func()) {
	dir, err := os.MkdirTemp("", "arbor-example")
	if err != nil {
		panic(err) // examples have no *testing.T
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			Name: "example", DataDir: dir,
			ClientListener: cl, PeerListener: pl,
			AdvertisePeerAddr: pl.Addr().String(),
			NoSync:            true,
			TickInterval:      10 * time.Millisecond,
			Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "example server:", err)
		}
		os.RemoveAll(dir)
		http.DefaultClient.CloseIdleConnections()
	}
	addr = cl.Addr().String()
	// Wait until the member leads and serves.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, stop
			}
		}
	}
	stop()
	panic("example server not ready within 20s")
}
