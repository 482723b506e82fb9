//go:build unix

package proc

import (
	"fmt"
	"syscall"
)

func (m *Member) signalPause(pause bool) error {
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || isClosed(m.done) {
		return fmt.Errorf("%w: %s", ErrNotRunning, m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("proc: %v to %s: %w", sig, m.Name, err)
	}
	m.paused = pause
	return nil
}
