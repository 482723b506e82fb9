package zk

import "testing"

func TestPredecessor(t *testing.T) {
	children := []string{
		"_c_0f-lock-0000000007",
		"_c_a1-lock-0000000003",
		"_c_b2-lock-0000000005",
		"other",
	}
	for _, tt := range []struct {
		seq  int64
		want string
		ok   bool
	}{
		{3, "", false},
		{5, "_c_a1-lock-0000000003", true},
		{7, "_c_b2-lock-0000000005", true},
		{9, "_c_0f-lock-0000000007", true},
	} {
		got, ok := predecessor(children, tt.seq)
		if got != tt.want || ok != tt.ok {
			t.Errorf("predecessor(%d) = %q, %v; want %q, %v", tt.seq, got, ok, tt.want, tt.ok)
		}
	}
}
