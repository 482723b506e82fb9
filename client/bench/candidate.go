package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// leadingLine starts the line a candidate process writes once it leads:
// "leading TIMEOUT_MS".
const leadingLine = "leading "

// spawnTimeout bounds how long a spawned candidate may take to lead.
const spawnTimeout = time.Minute

// ErrCandidate is returned when a spawned candidate does not come to lead.
var ErrCandidate = errors.New("bench: candidate process did not lead")

// RunCandidate is the candidate process of elect-failover: it opens a
// session, campaigns at path, writes "leading TIMEOUT_MS" to out once it
// leads, and holds on until ctx ends (or, as intended, it is killed).
func RunCandidate(ctx context.Context, env *Env, path string, out io.Writer) error {
	s, err := env.Dial(ctx)
	if err != nil {
		return err
	}
	defer func() { closeQuickly(ctx, s) }()
	e, ok := s.(Elector)
	if !ok {
		return fmt.Errorf("%w: %s's store has no election", ErrUnsupported, env.System)
	}
	if err := e.Campaign(ctx, path, []byte("candidate")); err != nil {
		return fmt.Errorf("bench: candidate: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s%d\n", leadingLine, e.SessionTimeout().Milliseconds()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// SpawnCommand returns an Env.Spawn that runs argv(path) (a process that
// calls RunCandidate) and returns once it says it leads. Its stderr goes
// to stderr.
func SpawnCommand(stderr io.Writer, argv func(path string) []string) func(ctx context.Context, path string) (Candidate, error) {
	return func(ctx context.Context, path string) (Candidate, error) {
		args := argv(path)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stderr = stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCandidate, err)
		}
		p := &process{cmd: cmd, exited: make(chan struct{})}
		// Kill the process if it does not lead in time: that ends the
		// read below.
		timer := time.AfterFunc(spawnTimeout, func() { _ = cmd.Process.Kill() })
		stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
		timeout, err := readLeading(stdout)
		timer.Stop()
		stop()
		go func() { // reaps the process, once its output is read
			_, _ = io.Copy(io.Discard, stdout)
			_ = cmd.Wait() // a killed candidate exits with an error by design
			close(p.exited)
		}()
		if err != nil {
			_ = p.Kill()
			return nil, fmt.Errorf("%w: %s: %w", ErrCandidate, strings.Join(args, " "), err)
		}
		p.timeout = timeout
		return p, nil
	}
}

// readLeading reads a candidate's output up to its "leading" line.
func readLeading(r io.Reader) (time.Duration, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), leadingLine)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad line %q", sc.Text())
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("exited without leading")
}

// process is a spawned candidate.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	timeout time.Duration
}

func (p *process) SessionTimeout() time.Duration { return p.timeout }

func (p *process) Kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("bench: killing candidate %d: %w", p.cmd.Process.Pid, err)
	}
	<-p.exited
	return nil
}
