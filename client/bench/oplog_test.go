package bench

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every operation of a run is one line of the op log, with an end time
// inside the run and a latency no larger than the run's max.
func TestOpLogHasALinePerOperation(t *testing.T) {
	sys := newMemSystem()
	env := sys.env(opsOpts(4, 300))
	var buf bytes.Buffer
	env.OpLog = NewOpLog(&buf)
	before := time.Now()
	res, err := Run(t.Context(), "create", env)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.OpLog.Close(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 300 || res.Ops != 300 {
		t.Fatalf("%d lines in the op log for %d ops, want 300 of each", len(lines), res.Ops)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] != "ok" {
			t.Fatalf("line %q: want END LATENCY ok", l)
		}
		end, err1 := strconv.ParseInt(f[0], 10, 64)
		d, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("line %q: %v %v", l, err1, err2)
		}
		if end < before.UnixNano() || end > after.UnixNano() || d < 0 || float64(d) > res.MaxMs*1e6+1 {
			t.Fatalf("line %q is outside the run (%d..%d, max %.3f ms)", l, before.UnixNano(), after.UnixNano(), res.MaxMs)
		}
	}
}
