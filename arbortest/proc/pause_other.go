//go:build !unix

package proc

import "errors"

// errNoPause is returned where processes cannot be stopped and continued.
var errNoPause = errors.New("proc: pausing a member needs SIGSTOP and SIGCONT (unix only)")

func (m *Member) signalPause(bool) error { return errNoPause }
