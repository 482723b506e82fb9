package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of samples, the reference the
// histogram is checked against.
func exactQuantile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := max(int(math.Ceil(q*float64(len(s)))), 1)
	return s[rank-1]
}

func TestQuantileSmallExact(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{3 * ms}, 0.99, 3 * ms},
		{"median of odd", []time.Duration{1 * ms, 2 * ms, 3 * ms}, 0.5, 2 * ms},
		{"median of even is the lower", []time.Duration{1 * ms, 2 * ms, 3 * ms, 4 * ms}, 0.5, 2 * ms},
		{"p99 of 100 is the 99th", seq(100, ms), 0.99, 99 * ms},
		{"p99 of 101 is the 100th", seq(101, ms), 0.99, 100 * ms},
		{"max", seq(10, ms), 1, 10 * ms},
		{"tiny q is the min", seq(10, ms), 0.0001, 1 * ms},
		{"exact below 256ns", []time.Duration{1, 2, 3, 200, 255}, 0.8, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, s := range tt.samples {
				h.Record(s)
			}
			if ref := exactQuantile(tt.samples, tt.q); ref != tt.want {
				t.Fatalf("reference quantile = %v, test expects %v", ref, tt.want)
			}
			assertClose(t, h.Quantile(tt.q), tt.want)
		})
	}
}

func seq(n int, unit time.Duration) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i+1) * unit
	}
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// assertClose allows the histogram's bucket precision.
func assertClose(t *testing.T, got, want time.Duration) {
	t.Helper()
	if diff := math.Abs(float64(got - want)); diff > float64(want)/200 {
		t.Errorf("quantile = %v, want %v (±0.5%%)", got, want)
	}
}

func TestQuantileMatchesExactOnDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform 0-10ms": func() time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) },
		"exponential":    func() time.Duration { return time.Duration(r.ExpFloat64() * float64(time.Millisecond)) },
		"bimodal":        bimodal(r),
		"heavy tail":     func() time.Duration { return time.Duration(math.Exp(r.NormFloat64()*2) * float64(time.Millisecond)) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			samples := make([]time.Duration, 20000)
			for i := range samples {
				samples[i] = gen()
				h.Record(samples[i])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				assertClose(t, h.Quantile(q), exactQuantile(samples, q))
			}
			if h.Max() != exactQuantile(samples, 1) {
				t.Errorf("Max = %v, want the exact max %v", h.Max(), exactQuantile(samples, 1))
			}
		})
	}
}

func bimodal(r *rand.Rand) func() time.Duration {
	return func() time.Duration {
		if r.IntN(100) < 95 {
			return time.Duration(500+r.IntN(100)) * time.Microsecond
		}
		return time.Duration(40+r.IntN(10)) * time.Millisecond
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	var a, b, both Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		both.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	if a != both {
		t.Fatalf("merged histogram differs from one recording everything")
	}
	for _, q := range []float64{0.5, 0.99} {
		if a.Quantile(q) != both.Quantile(q) {
			t.Errorf("q%v: merged %v, together %v", q, a.Quantile(q), both.Quantile(q))
		}
	}
}

func TestBucketsAreMonotonicAndCoverTheirValues(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1 << 20, 1<<20 + 12345, 1 << 40, math.MaxInt64, math.MaxUint64} {
		i := bucketOf(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d (of %d buckets)", v, i, prev, histBuckets)
		}
		prev = i
		if mid := bucketMid(i); math.Abs(float64(mid)-float64(v)) > float64(v)/256+1 {
			t.Errorf("value %d lands in bucket %d whose middle is %d", v, i, mid)
		}
	}
}
