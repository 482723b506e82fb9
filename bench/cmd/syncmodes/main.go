// Command syncmodes measures how long a small durable append takes on this
// machine's disk, written each way a log could be: write and fdatasync into
// a file preallocated with fallocate (what raftnode/wal does), into one
// filled with zeros first, into a file that grows, and one write through
// O_DSYNC or O_DIRECT|O_DSYNC into a zero-filled file. With -writers 3 it
// runs three logs at once, as three members sharing one disk do; with -gap
// each log sleeps that long after every append, as a member idles between
// the writes of one client.
//
//	go run ./cmd/syncmodes -dir /var/tmp/syncmodes -writers 3
//	go run ./cmd/syncmodes -dir /var/tmp/syncmodes -gap 500us
//
// Linux only (fallocate, O_DIRECT).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const fileBytes = 64 << 20

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "syncmodes"), "directory on the disk to measure (files of 64 MiB each are written there)")
	writers := flag.Int("writers", 1, "logs syncing at once")
	n := flag.Int("n", 2000, "durable appends per log")
	gap := flag.Duration("gap", 0, "idle time after each append (0: back to back)")
	flag.Parse()
	if *writers < 1 || *n < 1 || *gap < 0 {
		fmt.Fprintln(os.Stderr, "syncmodes: -writers and -n must be at least 1, -gap not negative")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "syncmodes:", err)
		os.Exit(1)
	}
	for _, mode := range []string{"fallocate", "zero-filled", "growing", "o_dsync", "o_direct"} {
		ds, err := measure(*dir, mode, *writers, *n, *gap)
		if err != nil {
			fmt.Fprintf(os.Stderr, "syncmodes: %s: %v\n", mode, err)
			os.Exit(1)
		}
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[int(float64(len(ds)-1)*p)].Round(time.Microsecond) }
		fmt.Printf("%-12s writers=%d gap=%v  p50 %-8v p90 %-8v p99 %v\n", mode, *writers, *gap, q(.5), q(.9), q(.99))
	}
}

// measure runs writers logs at once and returns the time of every durable
// append.
func measure(dir, mode string, writers, n int, gap time.Duration) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			ds, err := oneLog(filepath.Join(dir, fmt.Sprintf("log%d", w)), mode, n, gap)
			mu.Lock()
			defer mu.Unlock()
			all, errs = append(all, ds...), append(errs, err)
		})
	}
	wg.Wait()
	return all, errors.Join(errs...)
}

func oneLog(path, mode string, n int, gap time.Duration) ([]time.Duration, error) {
	_ = os.Remove(path)
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "fallocate":
		err = syscall.Fallocate(int(f.Fd()), 0, 0, fileBytes)
	case "zero-filled", "o_dsync", "o_direct":
		err = zeroFill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if mode == "o_dsync" || mode == "o_direct" {
		f.Close()
		flags := os.O_RDWR | syscall.O_DSYNC
		if mode == "o_direct" {
			flags |= syscall.O_DIRECT
		}
		if f, err = os.OpenFile(path, flags, 0); err != nil {
			return nil, err
		}
	}
	defer f.Close()
	ds := make([]time.Duration, 0, n)
	rec := make([]byte, 300) // a small raft batch
	block := alignedBlock()  // O_DIRECT writes whole aligned blocks
	for i := range n {
		start := time.Now()
		switch mode {
		case "o_dsync", "o_direct":
			// The block holding the log's tail, rewritten with each record.
			_, err = f.WriteAt(block, int64(i*len(rec)/len(block))*int64(len(block)))
		default:
			if _, err = f.WriteAt(rec, int64(i*len(rec))); err == nil {
				start = time.Now()
				err = syscall.Fdatasync(int(f.Fd()))
			}
		}
		if err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(start))
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	return ds, nil
}

func zeroFill(f *os.File) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < fileBytes; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
	}
	return nil
}

func alignedBlock() []byte {
	b := make([]byte, 8192)
	skip := (4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)) & 4095
	return b[skip : skip+4096]
}
