package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// ptsName unlocks the pseudo-terminal master m and returns its slave's path.
func ptsName(m *os.File) (string, error) {
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		return "", fmt.Errorf("unlockpt: %w", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		return "", fmt.Errorf("ptsname: %w", e)
	}
	return fmt.Sprintf("/dev/pts/%d", n), nil
}
