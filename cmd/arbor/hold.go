package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/arbor-db/arbor/client"
)

// killGrace is how long a command told to stop (SIGTERM) has before it is
// killed (SIGKILL).
const killGrace = 10 * time.Second

// hold keeps a session, and so what it owns, until ctx ends (SIGINT or
// SIGTERM) or lost ends: the session's Context (expired, or in jeopardy: the
// cluster may expire it at any moment), or a context derived from it that
// also ends when what is held goes. With argv it runs that command meanwhile: the
// command's end ends the hold, ctx's end is passed to it as SIGTERM, and a
// lost session stops it (SIGTERM, then SIGKILL after killGrace). extraEnv
// is added to the command's environment. It returns the command's exit
// status as an *exitError (nil for 0), or why the hold ended early.
func hold(ctx context.Context, lost context.Context, e env, argv []string, extraEnv []string, what string) error {
	if len(argv) == 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-lost.Done():
			return lostError(lost, what)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	cmd.Env = append(os.Environ(), extraEnv...)
	// Its own process group, so that stopping it stops what it started
	// (a shell's children) too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := startHeld(cmd); err != nil {
		return &exitError{code: exitFail, msg: fmt.Sprintf("BAD_REQUEST: cannot run %s: %v", argv[0], err)}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var why error
	select {
	case err := <-exited:
		return exitStatus(argv[0], err)
	case <-ctx.Done():
		// Stopped ourselves: the command stops too, and its status is ours.
		signalGroup(cmd, syscall.SIGTERM)
		return exitStatus(argv[0], stopWithin(cmd, exited))
	case <-lost.Done():
		why = lostError(lost, what)
	}
	fmt.Fprintf(e.stderr, "arbor: stopping %s: %v\n", argv[0], why)
	signalGroup(cmd, syscall.SIGTERM)
	_ = stopWithin(cmd, exited)
	return why
}

// signalGroup signals the command's whole process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// stopWithin waits for a command told to stop, killing it after killGrace.
func stopWithin(cmd *exec.Cmd, exited <-chan error) error {
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
		signalGroup(cmd, syscall.SIGKILL)
		return <-exited
	}
}

// lostError says how a session was lost, as an exit status 1 error.
func lostError(lost context.Context, what string) error {
	cause := context.Cause(lost)
	code, why := "UNAVAILABLE", cause.Error()
	var ce *client.Error
	if errors.As(cause, &ce) {
		code, why = string(ce.Code), ce.Message
	}
	if errors.Is(cause, client.ErrJeopardy) {
		why = "the cluster could not be reached for so long that it may have expired the session"
	}
	return &exitError{code: exitFail, msg: fmt.Sprintf("%s: %s is lost: %s", code, what, why)}
}

// exitStatus turns a command's Wait error into arbor's exit status: the
// command's own, or 128+signal when a signal ended it (as shells do).
func exitStatus(name string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &exitError{code: 128 + int(ws.Signal())}
		}
		return &exitError{code: ee.ExitCode()}
	}
	return &exitError{code: exitFail, msg: fmt.Sprintf("INTERNAL: waiting for %s: %v", name, err)}
}
