package server

import (
	"errors"
	"slices"
	"testing"
)

func TestRenewalRoundTrip(t *testing.T) {
	for _, ids := range [][]uint64{{}, {1}, {1 << 63, 5, 5, 0}} {
		b := encodeRenewal(ids)
		got, err := decodeRenewal(b)
		if err != nil || !slices.Equal(got, ids) {
			t.Fatalf("decode(encode(%v)) = %v, %v", ids, got, err)
		}
		for i := range len(b) {
			if _, err := decodeRenewal(b[:i]); !errors.Is(err, errBadRenewal) {
				t.Fatalf("prefix %d of %v accepted: %v", i, ids, err)
			}
		}
		if _, err := decodeRenewal(append(b, 0)); !errors.Is(err, errBadRenewal) {
			t.Fatalf("trailing byte accepted")
		}
	}
}

func FuzzDecodeRenewal(f *testing.F) {
	f.Add(encodeRenewal(nil))
	f.Add(encodeRenewal([]uint64{1, 2, 3}))
	f.Add([]byte("ARNW\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeRenewal(b)
		if err != nil {
			if !errors.Is(err, errBadRenewal) {
				t.Fatalf("error does not wrap errBadRenewal: %v", err)
			}
			return
		}
		if again, err := decodeRenewal(encodeRenewal(ids)); err != nil || !slices.Equal(again, ids) {
			t.Fatalf("round trip of %v: %v, %v", ids, again, err)
		}
	})
}
