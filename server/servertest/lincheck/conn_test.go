package lincheck_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/server/servertest"
	"github.com/arbor-db/arbor/server/servertest/lincheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConnRecordsARealCluster drives a member through Conn and checks that
// what it records passes every checker: outputs, versions, ephemeral owners
// and session names line up with what the server sends.
func TestConnRecordsARealCluster(t *testing.T) {
	c := servertest.NewCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := lincheck.NewRecorder()
	dial := func() *lincheck.Conn {
		cl, err := client.Dial(ctx, client.Config{Endpoints: c.Addrs(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return rec.Wrap(cl, c.Name(0))
	}
	a, b := dial(), dial()
	defer b.Close(ctx)
	must := func(out lincheck.Output, err error) lincheck.Output {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := must(a.Create(ctx, "/k", "1", false)); out.Version != 0 || out.Zxid == 0 {
		t.Fatalf("create: %v", out)
	}
	if out := must(a.Set(ctx, "/k", "2", 0)); out.Version != 1 {
		t.Fatalf("set: %v", out)
	}
	if out := must(b.CAS(ctx, "/k", 1, "3")); out.Version != 2 {
		t.Fatalf("cas: %v", out)
	}
	if out, err := b.CAS(ctx, "/k", 1, "4"); err == nil || out.Err != "BAD_VERSION" {
		t.Fatalf("stale cas: %v %v", out, err)
	}
	if out := must(b.Get(ctx, "/k", true)); out.Data != "3" || out.Version != 2 {
		t.Fatalf("local get: %v", out)
	}
	must(a.Create(ctx, "/e", "x", true))
	if out := must(b.Get(ctx, "/e", false)); out.Owner != a.Client().Session() {
		t.Fatalf("ephemeral owner %q, session %q", out.Owner, a.Client().Session())
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "/e", false); err == nil {
		t.Fatal("ephemeral still there after its session's close")
	}
	must(b.Delete(ctx, "/k", lincheck.AnyVersion))

	h := rec.History()
	if res := lincheck.CheckLinearizable(h, 10*time.Second); res.Result != porcupine.Ok || res.Ops != 5 {
		t.Errorf("linearizability: %v over %d ops", res.Result, res.Ops)
	}
	if errs := lincheck.CheckLocalReadsMonotonic(h); len(errs) > 0 {
		t.Error(errs)
	}
	if errs := lincheck.CheckEphemerals(h); len(errs) > 0 {
		t.Error(errs)
	}
	if errs, err := lincheck.LeftoverEphemerals(ctx, b.Client(), h, "/"); err != nil || len(errs) > 0 {
		t.Error(errs, err)
	}
	if err := lincheck.CheckStateHashes(ctx, c.Addrs()); err != nil {
		t.Error(err)
	}
}
