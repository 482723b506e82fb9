package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is returned for a member whose process is not running.
var ErrNotRunning = errors.New("proc: member is not running")

// Member is one `arbor server` process and what it takes to start it
// again. The fields are set before its first start; a test may change Args
// between a stop and the next Start (to point it at another data dir).
type Member struct {
	Name       string
	Host       string // the IP it listens on
	DataDir    string
	LogPath    string // its stdout and stderr, appended to on every start
	ClientAddr string // HOST:PORT
	PeerAddr   string
	GossipAddr string
	PeerPort   int
	Args       []string // the arguments after the binary: "server --name ..."
	// SysProcAttr, when set (by Options.Prepare), is used for every start:
	// another uid, a death signal.
	SysProcAttr *syscall.SysProcAttr

	env []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has been reaped
	err      error         // what Wait returned, once done is closed
	paused   bool
	logStart int64 // the size of the log when the process was started
}

// start runs the member's process. The goroutine it starts reaps the
// process and ends when it exits.
func (m *Member) start(binary string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && !isClosed(m.done) {
		return fmt.Errorf("proc: %s is already running (pid %d)", m.Name, m.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("proc: %s: %w", m.Name, err)
	}
	st, err := logf.Stat()
	if err != nil {
		logf.Close()
		return fmt.Errorf("proc: %s: %w", m.Name, err)
	}
	cmd := exec.Command(binary, m.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = m.env
	cmd.SysProcAttr = m.SysProcAttr
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("proc: starting %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	m.cmd, m.done, m.err, m.paused, m.logStart = cmd, done, nil, false, st.Size()
	go func() {
		err := cmd.Wait()
		logf.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(done)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether the member's process was started and has not
// exited.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !isClosed(m.done)
}

// Paused reports whether the member is stopped by SIGSTOP.
func (m *Member) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused && m.cmd != nil && !isClosed(m.done)
}

// PID returns the process id of the running member, or 0.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || isClosed(m.done) {
		return 0
	}
	return m.cmd.Process.Pid
}

// Err returns how the member's last process exited (nil while it runs or
// after a clean exit).
func (m *Member) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// process returns the current process and its done channel (nil, nil if
// it was never started).
func (m *Member) process() (*exec.Cmd, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd, m.done
}

// Kill sends SIGKILL (a paused process dies too) and waits until the
// process is gone. A member that is not running is left alone.
func (m *Member) Kill() {
	cmd, done := m.process()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL) // fails only once it has exited
	<-done
}

// Stop resumes a paused member, sends SIGTERM and returns how the process
// exited; after within it kills the process and says so.
func (m *Member) Stop(within time.Duration) error {
	cmd, done := m.process()
	if cmd == nil || isClosed(done) {
		return nil
	}
	if m.Paused() {
		if err := m.Resume(); err != nil {
			return err
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM) // fails only once it has exited
	select {
	case <-done:
		return m.Err()
	case <-time.After(within):
		m.Kill()
		return fmt.Errorf("proc: %s did not stop within %v of SIGTERM", m.Name, within)
	}
}

// Wait waits up to within for the member to exit on its own and returns
// how it exited.
func (m *Member) Wait(within time.Duration) error {
	cmd, done := m.process()
	if cmd == nil {
		return fmt.Errorf("%w: %s was never started", ErrNotRunning, m.Name)
	}
	select {
	case <-done:
		return m.Err()
	case <-time.After(within):
		return fmt.Errorf("proc: %s still running after %v", m.Name, within)
	}
}

// Pause stops the member's process with SIGSTOP.
func (m *Member) Pause() error { return m.signalPause(true) }

// Resume continues a paused member with SIGCONT.
func (m *Member) Resume() error { return m.signalPause(false) }

// Log returns everything the member has logged, over all its starts.
func (m *Member) Log() string {
	b, _ := os.ReadFile(m.LogPath) // no log yet reads as empty
	return string(b)
}

// Tail returns the last n lines of the member's log.
func (m *Member) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(m.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logSinceStart returns what the member logged since its last start.
func (m *Member) logSinceStart() string {
	m.mu.Lock()
	from := m.logStart
	m.mu.Unlock()
	b, _ := os.ReadFile(m.LogPath)
	if int64(len(b)) < from {
		return ""
	}
	return string(b[from:])
}

// portInUse reports whether the member's last process exited because one
// of its addresses was taken: the message `arbor server` prints for a busy
// --*-addr, or the system's for the gossip port memberlist binds itself.
func (m *Member) portInUse() bool {
	cmd, done := m.process()
	if cmd == nil || !isClosed(done) {
		return false
	}
	log := m.logSinceStart()
	return strings.Contains(log, " is in use") || strings.Contains(log, "address already in use")
}
