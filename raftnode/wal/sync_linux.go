package wal

import (
	"os"
	"syscall"
)

// fdatasync writes f's data and the metadata needed to read it back (its
// size), not its timestamps: one journal commit less than fsync when the
// file grew, none when it did not.
func fdatasync(f *os.File) error { return onFD(f, syscall.Fdatasync) }

// fallocate allocates n bytes of f from off, extending its size.
func fallocate(f *os.File, off, n int64) error {
	return onFD(f, func(fd int) error { return syscall.Fallocate(fd, 0, off, n) })
}

// onFD runs call on f's descriptor, again while it is interrupted.
func onFD(f *os.File, call func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = call(int(fd)); serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
