package tree

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxPath is the longest path, in bytes, that Apply and Multi accept. The
// server checks its own configurable limit first; this is a safety net.
const MaxPath = 4096

// MaxData is the largest node data, in bytes, that the tree accepts.
const MaxData = 1 << 20

// ValidatePath reports whether p is a valid absolute node path: it starts
// with "/", has no empty, "." or ".." component, no trailing "/" (except the
// root), no NUL or other control character, is valid UTF-8 and is at most
// maxLen bytes long (maxLen <= 0 disables the length check). The error wraps
// ErrBadPath and names the rule that p breaks.
func ValidatePath(p string, maxLen int) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: path is empty", ErrBadPath)
	case p[0] != '/':
		return fmt.Errorf("%w: path %q does not start with \"/\"", ErrBadPath, p)
	case maxLen > 0 && len(p) > maxLen:
		// Quote only the start: the whole path may be megabytes.
		return fmt.Errorf("%w: path %q... of %d bytes is longer than %d bytes", ErrBadPath, p[:min(len(p), 32)], len(p), maxLen)
	case p == "/":
		return nil
	case p[len(p)-1] == '/':
		return fmt.Errorf("%w: path %q ends with \"/\"", ErrBadPath, p)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == 0:
			return fmt.Errorf("%w: path %q contains a NUL byte", ErrBadPath, p)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%w: path %q contains control character %#02x", ErrBadPath, p, c)
		}
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: path %q is not valid UTF-8", ErrBadPath, p)
	}
	for rest := p[1:]; ; {
		comp, tail, more := strings.Cut(rest, "/")
		switch comp {
		case "":
			return fmt.Errorf("%w: path %q has an empty component", ErrBadPath, p)
		case ".":
			return fmt.Errorf("%w: path %q has a \".\" component", ErrBadPath, p)
		case "..":
			return fmt.Errorf("%w: path %q has a \"..\" component", ErrBadPath, p)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// splitPath returns the parent path and the last component of a valid,
// non-root path.
func splitPath(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// joinPath appends a child name to a parent path.
func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// isReserved reports whether p is Reserved or below it.
func isReserved(p string) bool {
	return p == Reserved || strings.HasPrefix(p, Reserved+"/")
}
