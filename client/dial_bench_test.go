package client_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest"
)

// BenchmarkOpenSession opens a session with an ephemeral node, as arbor
// bench sessions does, on an in-process cluster of three (no fsync); the
// sessions stay open until the end, as there.
func BenchmarkOpenSession(b *testing.B) {
	cl := servertest.NewCluster(b, 3)
	cfg := client.Config{Endpoints: cl.Addrs(), Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	var open []*client.Client
	b.Cleanup(func() {
		for _, c := range open {
			c.Close(ctx)
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		open = append(open, c)
		if _, _, err := c.Create(ctx, "/s"+strconv.Itoa(i), nil, client.Ephemeral()); err != nil {
			b.Fatal(err)
		}
	}
}
