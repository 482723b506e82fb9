package tree

import (
	"errors"
	"strings"
	"testing"
)

func TestValidatePath(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxPath-1)
	tests := []struct {
		path string
		max  int
		want string // substring of the error; "" = valid
	}{
		{"/", MaxPath, ""},
		{"/a", MaxPath, ""},
		{"/a/b/c", MaxPath, ""},
		{"/a.b/..c/...", MaxPath, ""},
		{"/über/日本", MaxPath, ""},
		{long, MaxPath, ""},
		{"/abc", 4, ""},
		{"/abcd", 0, ""},
		{"", MaxPath, "path is empty"},
		{"a/b", MaxPath, `path "a/b" does not start with "/"`},
		{long + "a", MaxPath, "is longer than 4096 bytes"},
		{"/abcd", 4, `path "/abcd"... of 5 bytes is longer than 4 bytes`},
		{"/a/", MaxPath, `path "/a/" ends with "/"`},
		{"//", MaxPath, `ends with "/"`},
		{"/a//b", MaxPath, `path "/a//b" has an empty component`},
		{"//a", MaxPath, `path "//a" has an empty component`},
		{"/.", MaxPath, `path "/." has a "." component`},
		{"/a/./b", MaxPath, `has a "." component`},
		{"/..", MaxPath, `path "/.." has a ".." component`},
		{"/a/../b", MaxPath, `has a ".." component`},
		{"/a\x00b", MaxPath, `path "/a\x00b" contains a NUL byte`},
		{"/a\nb", MaxPath, "contains control character 0x0a"},
		{"/a\x1f", MaxPath, "contains control character 0x1f"},
		{"/a\x7f", MaxPath, "contains control character 0x7f"},
		{"/a\xffb", MaxPath, `path "/a\xffb" is not valid UTF-8`},
		{"/a\xc3", MaxPath, "is not valid UTF-8"},
	}
	for _, tt := range tests {
		err := ValidatePath(tt.path, tt.max)
		if tt.want == "" {
			if err != nil {
				t.Errorf("ValidatePath(%q) = %v, want nil", tt.path, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("ValidatePath(%q) = %v, want ErrBadPath", tt.path, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidatePath(%q) = %q, want it to contain %q", tt.path, err, tt.want)
		}
	}
}
