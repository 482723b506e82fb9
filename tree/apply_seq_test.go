package tree

import (
	"fmt"
	"testing"
)

func TestSeqNameMatchesFmt(t *testing.T) {
	for _, n := range []int32{0, 1, 9, 10, 123456789, 1234567890, 2147483647, -1, -2147483648} {
		if got, want := seqName("lock-", n), fmt.Sprintf("lock-%010d", n); got != want {
			t.Errorf("seqName(%d) = %q, want %q", n, got, want)
		}
	}
}
