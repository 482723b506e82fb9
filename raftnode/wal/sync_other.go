//go:build !linux

package wal

import (
	"errors"
	"os"
)

func fdatasync(f *os.File) error { return f.Sync() }

// fallocate is Linux's; elsewhere segments grow by appends.
func fallocate(*os.File, int64, int64) error { return errors.ErrUnsupported }
