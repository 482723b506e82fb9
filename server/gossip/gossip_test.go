package gossip_test

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/server/gossip"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	// memberlist binds TCP and UDP on the same port: find one free for both.
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return ""
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, name string, key []byte, logs *syncBuf) *gossip.Gossip {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	g, err := gossip.Start(gossip.Config{
		Meta:     gossip.Meta{Name: name, ID: uint64(len(name)), PeerURL: "127.0.0.1:1", ClientURL: "127.0.0.1:2", Version: 3},
		BindAddr: freeAddr(t), Key: key, Local: true, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}

func alive(g *gossip.Gossip) []string {
	var out []string
	for _, m := range g.Members() {
		if m.Alive {
			out = append(out, m.Name)
		}
	}
	return out
}

func TestMembersSeeEachOther(t *testing.T) {
	key := []byte("0123456789abcdef")
	a, b, c := start(t, "a", key, nil), start(t, "b", key, nil), start(t, "c", key, nil)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join([]string{b.Addr()}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gossip.Gossip{a, b, c} {
		waitFor(t, "every member sees all three alive", func() bool { return strings.Join(alive(g), ",") == "a,b,c" })
	}
	for _, m := range a.Members() {
		if m.ClientURL != "127.0.0.1:2" || m.Version != 3 || m.ID != uint64(len(m.Name)) {
			t.Fatalf("metadata of %s as a sees it: %+v", m.Name, m)
		}
	}
	if err := b.SetMeta(gossip.Meta{Name: "b", ID: 1, ClientURL: "127.0.0.1:9", Version: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sees b's new metadata", func() bool {
		for _, m := range a.Members() {
			if m.Name == "b" && m.ClientURL == "127.0.0.1:9" {
				return true
			}
		}
		return false
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sees c gone", func() bool { return strings.Join(alive(a), ",") == "a,b" })
}

// A member without the key cannot join, and the members log its attempt.
func TestWrongKeyCannotJoin(t *testing.T) {
	var logs syncBuf
	a := start(t, "a", []byte("0123456789abcdef"), &logs)
	intruder := start(t, "x", []byte("fedcba9876543210"), nil)
	if _, err := intruder.Join([]string{a.Addr()}); err == nil {
		t.Fatal("a member with the wrong key joined")
	}
	if got := alive(a); len(got) != 1 {
		t.Fatalf("a sees %v", got)
	}
	waitFor(t, "a logs the refused attempt", func() bool { return strings.Contains(logs.String(), "could decrypt") })
	plain := start(t, "p", nil, nil)
	if _, err := plain.Join([]string{a.Addr()}); err == nil {
		t.Fatal("a member without a key joined")
	}
	if _, err := gossip.Start(gossip.Config{Meta: gossip.Meta{Name: "k"}, BindAddr: freeAddr(t), Key: []byte("short")}); err == nil {
		t.Fatal("a 5-byte key accepted")
	}
}
