package server

import (
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"time"
)

// The connection's writer gathers its frames (responses and watch events)
// in a frameBuf and writes them in one write when it would wait or has
// nothing left: a burst of events costs one system call, not one each.
// The frames are unmasked, unfragmented text frames (RFC 6455 5.2), as a
// server sends them, written to the socket under gorilla's Conn: only the
// writer writes data frames, and gorilla writes its control frames (close,
// pong) with one write each, so frames never interleave within a frame.
// Compression is never negotiated (the Upgrader leaves it off).

// frameBuf is the writer's gathered frames. Its buffer comes from a pool
// and goes back after every write, so an idle connection holds none.
type frameBuf struct {
	b *[]byte
}

const (
	// gatherBytes is how much the writer gathers before it writes anyway.
	gatherBytes = 64 << 10
	// poolBytes bounds the buffers kept for reuse (a resync chunk may
	// make one of several MiB).
	poolBytes = 256 << 10
)

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (f *frameBuf) len() int {
	if f.b == nil {
		return 0
	}
	return len(*f.b)
}

func (f *frameBuf) buf() []byte {
	if f.b == nil {
		f.b = framePool.Get().(*[]byte)
	}
	return *f.b
}

// add gathers a frame holding payload. It reports false when the gathered
// frames are due to be written.
func (f *frameBuf) add(payload []byte) bool {
	b := appendFrameHeader(f.buf(), len(payload))
	*f.b = append(b, payload...)
	return len(*f.b) < gatherBytes
}

// watchPrefix opens a watch event frame; the watch id and the event's
// shared tail follow (eventTail).
const watchPrefix = `{"event":"watch","watch":`

// addWatchEvent gathers the frame watchPrefix + id + tail.
func (f *frameBuf) addWatchEvent(id uint64, tail []byte) bool {
	var num [20]byte
	digits := strconv.AppendUint(num[:0], id, 10)
	b := appendFrameHeader(f.buf(), len(watchPrefix)+len(digits)+len(tail))
	b = append(b, watchPrefix...)
	b = append(b, digits...)
	*f.b = append(b, tail...)
	return len(*f.b) < gatherBytes
}

// writeTo writes the gathered frames to nc in one write, within timeout.
func (f *frameBuf) writeTo(nc net.Conn, timeout time.Duration) error {
	if f.len() == 0 {
		return nil
	}
	_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := nc.Write(*f.b)
	if cap(*f.b) <= poolBytes {
		*f.b = (*f.b)[:0]
		framePool.Put(f.b)
	}
	f.b = nil
	return err
}

// appendFrameHeader appends the header of an unmasked final text frame
// of n payload bytes.
func appendFrameHeader(b []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return append(b, finText, 126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}
