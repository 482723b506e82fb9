//go:build !linux

package main

import "os/exec"

// startHeld starts cmd. Only Linux can have the kernel kill it if arbor
// dies first.
func startHeld(cmd *exec.Cmd) error { return cmd.Start() }
