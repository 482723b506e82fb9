package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
)

// stampedLine is a line of a process's output and when the test read it,
// on the test process's clock.
type stampedLine struct {
	text string
	at   time.Time
}

// lineLog collects one output stream line by line as it comes.
type lineLog struct {
	mu    sync.Mutex
	lines []stampedLine
	eof   bool
	grew  chan struct{} // closed at the next line or at EOF, then replaced
}

func newLineLog() *lineLog { return &lineLog{grew: make(chan struct{})} }

// read reads r to EOF, stamping each line as soon as it is read.
func (l *lineLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.add(stampedLine{text: sc.Text(), at: time.Now()}, false)
	}
	l.add(stampedLine{}, true)
}

func (l *lineLog) add(line stampedLine, eof bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if eof {
		l.eof = true
	} else {
		l.lines = append(l.lines, line)
	}
	close(l.grew)
	l.grew = make(chan struct{})
}

// find returns the first line that contains s (any line when s is ""),
// waiting up to within for it.
func (l *lineLog) find(s string, within time.Duration) (stampedLine, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if strings.Contains(line.text, s) {
				l.mu.Unlock()
				return line, nil
			}
		}
		eof, grew := l.eof, l.grew
		l.mu.Unlock()
		if eof {
			return stampedLine{}, fmt.Errorf("the output ended without a line containing %q: %q", s, l.String())
		}
		select {
		case <-grew:
		case <-timer.C:
			return stampedLine{}, fmt.Errorf("no line containing %q within %v: %q", s, within, l.String())
		}
	}
}

// String returns every line read so far.
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// heldCommand is what a holder runs while it holds: it prints the token (from
// the environment variable tokenVar), the session and its own pid, then
// becomes a sleep, which keeps that pid.
func heldCommand(tokenVar string) []string {
	return []string{"sh", "-c", fmt.Sprintf(`echo "$%s $ARBOR_SESSION $$"; exec sleep 600`, tokenVar)}
}

// holder is an `arbor lock` or `arbor elect` process that holds its grant
// while heldCommand runs.
type holder struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  *lineLog
	stderr  *lineLog
	exited  chan struct{} // closed once the process is gone; err is set then
	err     error
	readers sync.WaitGroup // the two output readers, done at EOF

	token   uint64 // the fencing token its command was given
	session string
	// cmdPid is the held command's pid and process group: arbor starts its
	// command in a group of its own, so killing arbor's group leaves it.
	cmdPid int
}

// startHolder runs arbor with args (up to, not including, the --) and
// heldCommand, and returns once the command has printed its token. tokenVar
// is ARBOR_LOCK_TOKEN or ARBOR_ELECTION_TOKEN. The process is killed at the
// end of the test.
func startHolder(t *testing.T, tokenVar string, args ...string) *holder {
	t.Helper()
	h := &holder{t: t, stdout: newLineLog(), stderr: newLineLog(), exited: make(chan struct{})}
	args = append(append(args, "--"), heldCommand(tokenVar)...)
	h.cmd = exec.Command(binary, args...)
	// Its own process group: signals to the test do not reach it, and
	// kill -9 of the group is kill -9 of arbor alone.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Pipes of our own rather than StdoutPipe, so that Wait does not close
	// them under the readers, and a reader sees EOF only once arbor and its
	// command have both closed their ends.
	var ends []*os.File
	for _, log := range []*lineLog{h.stdout, h.stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			for _, w := range ends {
				w.Close()
			}
			t.Fatal(err)
		}
		ends = append(ends, w)
		h.readers.Add(1)
		go func() {
			defer h.readers.Done()
			defer r.Close()
			log.read(r)
		}()
	}
	h.cmd.Stdout, h.cmd.Stderr = ends[0], ends[1]
	err := h.cmd.Start()
	for _, w := range ends {
		w.Close() // the child has its own copies
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		h.err = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(h.cleanup)

	line, err := h.stdout.find("", 20*time.Second)
	if err != nil {
		t.Fatalf("arbor %v: %v; stderr %q", args, err, h.stderr.String())
	}
	fields := strings.Fields(line.text)
	if len(fields) == 3 {
		h.token, err = strconv.ParseUint(fields[0], 10, 64)
		h.session = fields[1]
		if err == nil {
			h.cmdPid, err = strconv.Atoi(fields[2])
		}
	}
	if len(fields) != 3 || err != nil || h.token == 0 {
		t.Fatalf("the held command printed %q, want TOKEN SESSION PID", line.text)
	}
	return h
}

// kill9 kills arbor with SIGKILL, then its command (which would otherwise
// go on running without the lock), and returns when arbor was killed.
func (h *holder) kill9() time.Time {
	if err := syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		h.t.Fatalf("kill -9 of the holder: %v", err)
	}
	killed := time.Now()
	_ = syscall.Kill(-h.cmdPid, syscall.SIGKILL)
	h.wait(10 * time.Second)
	return killed
}

// interrupt sends arbor SIGINT, as ^C does.
func (h *holder) interrupt() time.Time {
	if err := h.cmd.Process.Signal(syscall.SIGINT); err != nil {
		h.t.Fatalf("SIGINT to the holder: %v", err)
	}
	return time.Now()
}

// wait waits up to within for arbor to exit and returns its exit code.
func (h *holder) wait(within time.Duration) int {
	h.t.Helper()
	select {
	case <-h.exited:
	case <-time.After(within):
		h.t.Fatalf("the holder did not exit within %v; stderr %q", within, h.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case h.err == nil:
		return 0
	case errors.As(h.err, &ee):
		return ee.ExitCode()
	}
	h.t.Fatalf("waiting for the holder: %v", h.err)
	return -1
}

// cleanup kills what is left of arbor and its command and waits for the
// readers to see the end of the output.
func (h *holder) cleanup() {
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	if h.cmdPid != 0 {
		_ = syscall.Kill(-h.cmdPid, syscall.SIGKILL)
	}
	<-h.exited
	done := make(chan struct{})
	go func() { h.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.t.Errorf("the holder's output was still open 10s after it was killed")
	}
}

// dialContender opens a Go client session on eps (the first one first),
// closed at the end of the test. Its session timeout is a long 10 s: the
// contender is never the one at risk.
func dialContender(t *testing.T, eps ...string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: eps, SessionTimeout: 10 * time.Second,
		InOrder: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("dial %v: %v", eps, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cl.Close(ctx)
	})
	return cl
}

// granted is the outcome of a Lock, and when it returned.
type granted struct {
	grant client.Grant
	err   error
	at    time.Time
}

// lockAsync asks for the lock at path in the background and sends the
// outcome once. After an indeterminate failure (a lost connection) it asks
// again, which goes on with the same place in the queue, as recipe.Mutex
// does. The request is withdrawn at the end of the test.
func lockAsync(t *testing.T, cl *client.Client, path string) <-chan granted {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan granted, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			g, err := cl.Lock(ctx, path)
			at := time.Now()
			if err != nil && client.IsIndeterminate(err) && ctx.Err() == nil && !cl.Expired() {
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-ctx.Done():
				}
			}
			out <- granted{grant: g, err: err, at: at}
			return
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// waitQueued polls until path has n children: the holder and its waiters.
func waitQueued(t *testing.T, cl *client.Client, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		kids, _, err := cl.Children(ctx, path)
		cancel()
		if err == nil && len(kids) == n {
			return kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has children %v (%v), want %d", path, kids, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heldBy fails the test unless the earliest child of path, the holder's
// place, is owned by session.
func heldBy(t *testing.T, cl *client.Client, path, session string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kids, _, err := cl.Children(ctx, path)
	if err != nil || len(kids) == 0 {
		t.Fatalf("children of %s: %v %v", path, kids, err)
	}
	st, err := cl.Exists(ctx, path+"/"+kids[0])
	if err != nil || st == nil || st.EphemeralOwner != session {
		t.Fatalf("%s/%s: stat %+v, err %v; want it owned by the holder's session %s", path, kids[0], st, err, session)
	}
}
