package tree

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzValidatePath(f *testing.F) {
	for _, p := range []string{"/", "/a", "/a/b", "", "a", "/a/", "//", "/a//b", "/.", "/..", "/a\x00", "/\x7f", "/\xff", "/ü/日本"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p, MaxPath)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v does not wrap ErrBadPath", err)
			}
			return
		}
		// Independent restatement of the rules for accepted paths.
		if !strings.HasPrefix(p, "/") || len(p) > MaxPath || !utf8.ValidString(p) {
			t.Fatalf("accepted %q", p)
		}
		if p == "/" {
			return
		}
		for _, c := range strings.Split(p[1:], "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("accepted %q with component %q", p, c)
			}
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("accepted %q with control character", p)
			}
		}
		// A valid path works as a create, unless it is reserved.
		tr := New()
		if p != "/" && strings.Count(p, "/") == 1 && !isReserved(p) {
			if _, _, err := tr.Apply(1, 0, Op{Kind: OpCreate, Path: p}); err != nil {
				t.Fatalf("create %q: %v", p, err)
			}
		}
	})
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(snapshotBytes(f, New()))
	f.Add(snapshotBytes(f, sampleTree(f)))
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		// Varints may be encoded non-minimally, so b itself need not come
		// back; its re-encoding must be a fixed point.
		b2 := snapshotBytes(t, tr)
		tr2, err := ReadSnapshot(bytes.NewReader(b2))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if b3 := snapshotBytes(t, tr2); !bytes.Equal(b2, b3) {
			t.Fatalf("re-encoding is not stable")
		}
		if tr2.NumNodes() != tr.NumNodes() {
			t.Fatalf("NumNodes %d, want %d", tr2.NumNodes(), tr.NumNodes())
		}
	})
}
