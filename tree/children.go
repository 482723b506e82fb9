package tree

// A node's children are a sorted list of chunks: each chunk is a slice of at
// most maxChunk children sorted by name, and every name in a chunk sorts
// before every name in the next. A parent with up to maxChunk children has
// one chunk, so small parents stay as compact as a plain slice; a parent
// with a million children has ~4k-8k chunks, found by binary search over
// each chunk's last name, so an insert or delete moves at most maxChunk
// pointers instead of all of them. Splits and merges move chunk headers,
// but only once per ~maxChunk/2 inserts or deletes.
//
// Invariants (checkChildren in the tests verifies them): no chunk is empty,
// no chunk holds more than maxChunk children, names strictly increase across
// the whole list, and nkids is the total.

// maxChunk bounds a chunk. 256 pointers are 2 KiB: an insert moves at most
// that, and a big parent's chunk index stays small.
const maxChunk = 256

// minChunk is the size below which a chunk tries to merge with a neighbour
// after a delete; it is well under half of maxChunk so that the halves of a
// split never merge again straight away.
const minChunk = maxChunk / 4

// numChildren is the number of children of n.
func (n *node) numChildren() int { return int(n.nkids) }

// search returns the chunk and offset where name is, or would be inserted,
// and whether it is there. An insertion point after every child is reported
// as the end of the last chunk; with no children it is (0, 0).
func (n *node) search(name string) (ci, i int, found bool) {
	chunks := n.kids
	if len(chunks) == 0 {
		return 0, 0, false
	}
	// First chunk whose last name is >= name.
	lo, hi := 0, len(chunks)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := chunks[mid]
		if c[len(c)-1].name < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(chunks) {
		return lo - 1, len(chunks[lo-1]), false
	}
	c := chunks[lo]
	l, h := 0, len(c)
	for l < h {
		mid := int(uint(l+h) >> 1)
		if c[mid].name < name {
			l = mid + 1
		} else {
			h = mid
		}
	}
	return lo, l, c[l].name == name
}

func (n *node) child(name string) *node {
	if ci, i, ok := n.search(name); ok {
		return n.kids[ci][i]
	}
	return nil
}

// insertChild inserts c at the position search returned for its name, which
// must not be taken.
func (n *node) insertChild(ci, i int, c *node) {
	n.nkids++
	if len(n.kids) == 0 {
		n.kids = [][]*node{{c}}
		return
	}
	// A name that falls between two chunks may go at the end of the earlier
	// one; preferring it when it has room keeps chunks full when names arrive
	// in order (sequential nodes, one per client prefix).
	if i == 0 && ci > 0 && len(n.kids[ci-1]) < maxChunk {
		ci--
		i = len(n.kids[ci])
	}
	chunk := n.kids[ci]
	switch {
	case len(chunk) < maxChunk:
		n.kids[ci] = insertAt(chunk, i, c)
	case i == len(chunk):
		// Full, and c goes after it: start the next chunk rather than
		// leaving two half-empty ones behind an in-order stream.
		n.insertChunk(ci+1, []*node{c})
	case i == 0:
		n.insertChunk(ci, []*node{c})
	default:
		half := maxChunk / 2
		right := make([]*node, len(chunk)-half, maxChunk)
		copy(right, chunk[half:])
		clear(chunk[half:]) // the left half must not keep the moved children alive
		left := chunk[:half]
		if i <= half {
			left = insertAt(left, i, c)
		} else {
			right = insertAt(right, i-half, c)
		}
		n.kids[ci] = left
		n.insertChunk(ci+1, right)
	}
}

// removeChild removes the child at the position search found.
func (n *node) removeChild(ci, i int) {
	n.nkids--
	chunk := n.kids[ci]
	copy(chunk[i:], chunk[i+1:])
	chunk[len(chunk)-1] = nil
	chunk = chunk[:len(chunk)-1]
	n.kids[ci] = chunk
	switch {
	case len(chunk) == 0:
		n.removeChunk(ci)
	case len(chunk) < minChunk:
		if ci > 0 && len(n.kids[ci-1])+len(chunk) <= maxChunk {
			n.kids[ci-1] = append(n.kids[ci-1], chunk...)
			n.removeChunk(ci)
		} else if ci+1 < len(n.kids) && len(chunk)+len(n.kids[ci+1]) <= maxChunk {
			n.kids[ci] = append(chunk, n.kids[ci+1]...)
			n.removeChunk(ci + 1)
		}
	}
}

// addLastChild appends c, whose name sorts after every child; reading a
// snapshot builds full chunks this way.
func (n *node) addLastChild(c *node) {
	n.nkids++
	if k := len(n.kids); k > 0 && len(n.kids[k-1]) < maxChunk {
		n.kids[k-1] = append(n.kids[k-1], c)
		return
	}
	n.kids = append(n.kids, []*node{c})
}

func (n *node) insertChunk(ci int, chunk []*node) {
	n.kids = append(n.kids, nil)
	copy(n.kids[ci+1:], n.kids[ci:])
	n.kids[ci] = chunk
}

func (n *node) removeChunk(ci int) {
	copy(n.kids[ci:], n.kids[ci+1:])
	n.kids[len(n.kids)-1] = nil
	n.kids = n.kids[:len(n.kids)-1]
	switch {
	case len(n.kids) == 0:
		n.kids = nil
	case cap(n.kids) > 16 && len(n.kids) < cap(n.kids)/4:
		// A parent that shrank from huge gives back its chunk index.
		n.kids = append([][]*node(nil), n.kids...)
	}
}

// insertAt inserts c at index i of s.
func insertAt(s []*node, i int, c *node) []*node {
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = c
	return s
}

// eachChild calls fn for every child in name order.
func (n *node) eachChild(fn func(c *node)) {
	for _, chunk := range n.kids {
		for _, c := range chunk {
			fn(c)
		}
	}
}
