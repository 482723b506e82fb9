package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
)

func getDebugState(t *testing.T, addr string) debugState {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/debug/state")
	if code != http.StatusOK {
		t.Fatalf("/debug/state: %d %s", code, body)
	}
	var st debugState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /debug/state %q: %v", body, err)
	}
	return st
}

func TestDebugState(t *testing.T) {
	ts := startFake(t, nil)
	waitReady(t, ts.addr)
	c := helloed(t, ts.addr)
	before := getDebugState(t, ts.addr)
	if before.Member != "m1" || before.Sessions != 1 || before.Applied != ts.srv.sm.appliedIndex() {
		t.Fatalf("debug state: %+v (applied here %d)", before, ts.srv.sm.appliedIndex())
	}
	// The hash is of the snapshot bytes at that applied index.
	var buf bytes.Buffer
	if err := ts.srv.sm.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(buf.Bytes()); hex.EncodeToString(sum[:]) != before.StateSHA256 {
		t.Fatalf("state_sha256 %s is not the SHA-256 of the snapshot", before.StateSHA256)
	}
	if again := getDebugState(t, ts.addr); again != before {
		t.Fatalf("unchanged state reports differently: %+v then %+v", before, again)
	}
	if r := c.call(`{"id":2,"op":"create","path":"/d","data":"eA=="}`); !r.OK {
		t.Fatal(r.Error)
	}
	after := getDebugState(t, ts.addr)
	if after.Applied <= before.Applied || after.Nodes != before.Nodes+1 || after.StateSHA256 == before.StateSHA256 {
		t.Fatalf("after a create: %+v, before: %+v", after, before)
	}
}
