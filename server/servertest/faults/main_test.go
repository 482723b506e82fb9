package faults

import (
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/raftnode/wal"
)

func TestMain(m *testing.M) {
	wal.TrackSyncs() // for the power-loss fault
	goleak.VerifyTestMain(m)
}

// Environment knobs of TestFaults.
const (
	envSeeds    = "ARBOR_FAULT_SEEDS"    // number of seeds (1, 2, ... N); default 4
	envSeed     = "ARBOR_FAULT_SEED"     // replay exactly this seed
	envDuration = "ARBOR_FAULT_DURATION" // workload time per seed; default 5s
	envFirst    = "ARBOR_FAULT_FIRST"    // first seed of a range; default 1
)

// suiteSeeds returns the seeds to run from the environment.
func suiteSeeds(t *testing.T) []int64 {
	t.Helper()
	if s := os.Getenv(envSeed); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSeed, s, err)
		}
		return []int64{seed}
	}
	n, first := int64(4), int64(1)
	if s := os.Getenv(envSeeds); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 {
			t.Fatalf("%s=%q: want a positive number", envSeeds, s)
		}
		n = v
	}
	if s := os.Getenv(envFirst); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envFirst, s, err)
		}
		first = v
	}
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = first + int64(i)
	}
	return seeds
}

func suiteDuration(t *testing.T) time.Duration {
	t.Helper()
	if s := os.Getenv(envDuration); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s=%q: %v", envDuration, s, err)
		}
		return d
	}
	return 5 * time.Second
}
