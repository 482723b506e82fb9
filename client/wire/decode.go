package wire

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeRequest decodes one request frame exactly as json.Unmarshal into a
// zero Request does, same value and same error. Frames of the common shapes
// take a hand-written path that allocates little; anything that path is not
// sure of (an unknown or duplicate key, a \u escape, invalid UTF-8, a null,
// a number that is not a plain integer, a wrong type, bad JSON) is left to
// encoding/json, which decides from scratch.
func DecodeRequest(data []byte, r *Request) error {
	if decodeRequestFast(data, r) {
		return nil
	}
	*r = Request{}
	return json.Unmarshal(data, r)
}

// DecodeResponse is DecodeRequest for a response or event frame.
func DecodeResponse(data []byte, r *Response) error {
	if decodeResponseFast(data, r) {
		return nil
	}
	*r = Response{}
	return json.Unmarshal(data, r)
}

// maxFastDepth bounds the nesting of ops and results the fast path follows;
// deeper frames are legal but unusual, and encoding/json takes them.
const maxFastDepth = 3

func decodeRequestFast(data []byte, r *Request) bool {
	*r = Request{}
	d := decoder{b: data}
	return d.request(r, 0) && d.end()
}

func decodeResponseFast(data []byte, r *Response) bool {
	*r = Response{}
	d := decoder{b: data}
	return d.response(r, 0) && d.end()
}

// decoder reads JSON from b at i. Every method returns false, with no
// promise about how far it read, when the input is not what the fast path
// handles; the caller then gives the whole frame to encoding/json.
type decoder struct {
	b []byte
	i int
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end reports whether only whitespace is left.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

func (d *decoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads an object, calling field with each key (the raw bytes
// between the quotes, which hold no escape) with the decoder at its value.
func (d *decoder) object(field func(key []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.consume(':') {
			return false
		}
		d.ws()
		if !field(key) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// array reads an array, calling elem with the decoder at each element.
func (d *decoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		d.ws()
		if !elem() {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

// null reads a null if one is next. A null leaves a Go value untouched
// (pointers and slices stay nil), so for every field but the ones with an
// UnmarshalJSON method it decodes to the zero value.
func (d *decoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// rawString reads a string holding no escape and no invalid UTF-8 and
// returns its bytes, which alias the input.
func (d *decoder) rawString() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			s := d.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (d *decoder) str(dst *string) bool {
	if d.null() {
		return true
	}
	if s, ok := d.rawString(); ok {
		*dst = string(s)
		return true
	}
	return d.escapedString(dst)
}

// escapedString reads a string with escapes (error messages quote paths
// with %q), except \u escapes of UTF-16 surrogates, which encoding/json
// pairs up by rules the fast path does not copy.
func (d *decoder) escapedString(dst *string) bool {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	var out []byte
	for j := d.i + 1; j < len(d.b); {
		c := d.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return false
			}
			*dst = string(out)
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(d.b) {
			return false
		}
		switch e := d.b[j+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d.b[j+2:])
			if !ok || utf16.IsSurrogate(r) {
				return false
			}
			out = utf8.AppendRune(out, r)
			j += 4
		default:
			return false
		}
		j += 2
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// bytes reads standard base64 as encoding/json does: an empty string gives
// an empty, non-nil slice.
func (d *decoder) bytes(dst *[]byte) bool {
	if d.null() {
		return true
	}
	s, ok := d.rawString()
	if !ok {
		return false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return false
	}
	*dst = b[:n]
	return true
}

func (d *decoder) boolean(dst *bool) bool {
	switch {
	case d.null():
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		*dst = true
		d.i += 4
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		*dst = false
		d.i += 5
	default:
		return false
	}
	return true
}

// digits reads an integer literal (an optional minus, then 0 or digits
// without a leading zero) and returns its bytes; a fraction or exponent
// following it is refused, as is a value ending the input early.
func (d *decoder) digits() ([]byte, bool) {
	start := d.i
	j := d.i
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	first := j
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	if j == first || j-first > 1 && d.b[first] == '0' {
		return nil, false
	}
	if j < len(d.b) {
		switch d.b[j] {
		case '.', 'e', 'E':
			return nil, false
		}
	}
	d.i = j
	return d.b[start:j], true
}

func (d *decoder) uint(dst *uint64) bool {
	if d.null() {
		return true
	}
	s, ok := d.digits()
	if !ok || s[0] == '-' || len(s) > 20 {
		return false
	}
	var n uint64
	for _, c := range s {
		v := uint64(c - '0')
		if n > (1<<64-1-v)/10 {
			return false
		}
		n = n*10 + v
	}
	*dst = n
	return true
}

func (d *decoder) int(dst *int64) bool {
	if d.null() {
		return true
	}
	s, ok := d.digits()
	if !ok || len(s) > 20 {
		return false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) > 19 {
		return false
	}
	var n uint64 // 19 digits cannot overflow it
	for _, c := range s {
		n = n*10 + uint64(c-'0')
	}
	switch {
	case n > 1<<63 || n == 1<<63 && !neg:
		return false
	case neg:
		*dst = -int64(n)
	default:
		*dst = int64(n)
	}
	return true
}

// intPtr reads an integer into a new *int64; null leaves it nil.
func (d *decoder) intPtr(dst **int64) bool {
	if d.null() {
		return true
	}
	v := new(int64)
	*dst = v
	return d.int(v)
}

// seen guards against duplicate keys, which encoding/json merges in ways
// the fast path does not copy: a key's bit is set when it is read.
type seen uint64

func (s *seen) first(bit uint) bool {
	if *s&(1<<bit) != 0 {
		return false
	}
	*s |= 1 << bit
	return true
}
