package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// debugState is what GET /debug/state reports.
type debugState struct {
	Member  string `json:"member"`
	Applied uint64 `json:"applied"`
	Hash    string `json:"state_sha256"`
	Nodes   int    `json:"nodes"`
	Commit  uint64 `json:"commit"`
	Leader  bool   `json:"leader"`
}

func fetchState(t *testing.T, addr string) debugState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/state", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st debugState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// settledState fetches /debug/state until the member has a leader and has
// applied everything committed that it knows of, twice in a row at the same
// index: right after /readyz a restarted member may still be committing and
// applying the empty entry its new term starts with.
func settledState(t *testing.T, addr string) debugState {
	t.Helper()
	var last debugState
	settled := func(st debugState) bool { return st.Leader && st.Commit > 0 && st.Applied >= st.Commit }
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st := fetchState(t, addr)
		if settled(st) && settled(last) && st.Applied == last.Applied {
			return st
		}
		last = st
	}
	t.Fatalf("%s never settled: applied %d, commit %d, leader %v", addr, last.Applied, last.Commit, last.Leader)
	return last
}

// A member started twice from the same data dir replays its log to the same
// state, byte for byte: same applied index, same snapshot hash.
func TestRestartFromSameDataDirGivesIdenticalState(t *testing.T) {
	c := startCluster(t, 1, "--snapshot-entries", "40")
	conn := mustDial(t, c.members[0].clientAddr)
	for i := range 100 { // crosses two snapshots, so the restart is snapshot + log
		if _, err := conn.create(ctxFor(t, 5*time.Second), fmt.Sprintf("/d%03d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	conn.close()
	if err := c.stop(0); err != nil {
		t.Fatal(err)
	}
	orig := c.members[0].dataDir
	var states []debugState
	for run := range 2 {
		dir := fmt.Sprintf("%s-copy%d", orig, run)
		if out, err := exec.Command("cp", "-a", orig, dir).CombinedOutput(); err != nil {
			t.Fatalf("copy data dir: %v\n%s", err, out)
		}
		c.members[0].args = replaceFlag(c.members[0].args, "--data-dir", dir)
		c.start(0)
		c.waitReady(0, 20*time.Second)
		states = append(states, settledState(t, c.members[0].clientAddr))
		if err := c.stop(0); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(dir)
	}
	a, b := states[0], states[1]
	if a.Nodes < 100 {
		t.Fatalf("restarted member holds %d nodes, want >= 100", a.Nodes)
	}
	if a.Applied != b.Applied || a.Hash != b.Hash {
		t.Fatalf("two restarts from the same data dir differ:\n%+v\n%+v", a, b)
	}
}

func replaceFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}
