package main

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startHeld starts a command that may run only while arbor holds something
// for it (a lock, a leadership, an ephemeral node): if arbor dies (kill -9),
// nobody can stop it when what it holds is lost, so the kernel kills it
// then. Pdeathsig fires when the thread that started the child exits, so
// the start happens on a thread locked for it (Go does not end idle
// threads).
func startHeld(cmd *exec.Cmd) error {
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
