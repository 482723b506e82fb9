package raftnode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
)

type nopHandler struct{}

func (nopHandler) Step(context.Context, Message) error { return nil }
func (nopHandler) ReportUnreachable(uint64)            {}
func (nopHandler) ReportSnapshot(uint64, bool)         {}
func (nopHandler) OpenSnapshot(Message) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("none")
}
func (nopHandler) ReceiveSnapshot(context.Context, Message, io.Reader) error { return nil }

func TestTCPHandshakeRejectsWrongClusterAndTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	server := newTCPTransport(1, Config{ClusterToken: "a", PeerListener: ln}, log)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); server.Run(ctx, nopHandler{}) }()
	defer func() { cancel(); wg.Wait() }()

	addr := ln.Addr().String()
	wrongCluster := newTCPTransport(2, Config{ClusterToken: "b"}, log)
	if _, err := wrongCluster.dial(ctx, &tcpPeer{id: 1, addr: addr}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("wrong cluster: %v", err)
	}
	right := newTCPTransport(2, Config{ClusterToken: "a"}, log)
	if _, err := right.dial(ctx, &tcpPeer{id: 7, addr: addr}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("wrong target id: %v", err)
	}
	conn, err := right.dial(ctx, &tcpPeer{id: 1, addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestReadFrameRejectsOversizedLengthBeforeAllocating(t *testing.T) {
	hdr := []byte{frameMsg, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := readFrame(bytes.NewReader(hdr)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}
