package bench

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// OpLog writes one line per timed operation of RunOps and RunTimedOps, so
// latency can be looked at over time (say, during and between snapshots)
// rather than only as the run's percentiles:
//
//	END_UNIX_NANOS LATENCY_NANOS ok|err
//
// END is when the operation returned, LATENCY what the workload timed. The
// lines of concurrent clients interleave in the order they finished, near
// enough: each is written under one lock. Close flushes it.
type OpLog struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

// NewOpLog returns an OpLog writing to w.
func NewOpLog(w io.Writer) *OpLog { return &OpLog{w: bufio.NewWriterSize(w, 256<<10)} }

// record writes one operation's line; a nil log records nothing. The first
// write error is kept for Close.
func (l *OpLog) record(end time.Time, d time.Duration, err error) {
	if l == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "err"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		_, l.err = fmt.Fprintf(l.w, "%d %d %s\n", end.UnixNano(), d.Nanoseconds(), result)
	}
}

// Close flushes the log and returns the first error writing it.
func (l *OpLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	if l.err != nil {
		return fmt.Errorf("bench: op log: %w", l.err)
	}
	return nil
}
