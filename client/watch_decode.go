package client

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// The reader's fast path for watch events, the bulk of what a busy watcher
// reads. Arbor members send every watch event laid out one way:
//
//	{"event":"watch","watch":ID,"type":"T","path":"P","zxid":Z[,"data":"B64"]}
//
// decodeWatchEvent reads exactly that, without reflection or a Response;
// anything else (another field order, escapes in the path, a field it does
// not know) is left to the general JSON decoder, which decodes it the same.

// fastWatchEvent delivers frame if it is a watch event the fast path
// reads, and reports whether it did. Reader goroutine of cn.
func (c *Client) fastWatchEvent(cn *conn, frame []byte) bool {
	if c.cfg.OnEvent != nil {
		return false // it is handed the decoded Response
	}
	id, typ, path, zxid, data, ok := decodeWatchEvent(frame)
	if !ok {
		return false
	}
	c.noteZxid(zxid)
	c.mu.Lock()
	w := cn.watches[id]
	c.mu.Unlock()
	if w != nil && w.deliverChange(cn.dead, typ, path, zxid, data) {
		c.watchEnded(cn, id, w)
	}
	return true
}

// decodeWatchEvent decodes a watch event frame laid out as members send
// it; ok is false for any other frame.
func decodeWatchEvent(b []byte) (id uint64, typ EventType, path string, zxid uint64, data []byte, ok bool) {
	var rest []byte
	if rest, ok = cut(b, `{"event":"watch","watch":`); !ok {
		return
	}
	if id, rest, ok = number(rest); !ok {
		return
	}
	if rest, ok = cut(rest, `,"type":"`); !ok {
		return
	}
	var name []byte
	if name, rest, ok = plainString(rest); !ok {
		return
	}
	switch string(name) {
	case "created":
		typ = EventCreated
	case "deleted":
		typ = EventDeleted
	case "data":
		typ = EventData
	case "children":
		typ = EventChildren
	default:
		ok = false
		return
	}
	if rest, ok = cut(rest, `,"path":"`); !ok {
		return
	}
	var p []byte
	if p, rest, ok = plainString(rest); !ok {
		return
	}
	if rest, ok = cut(rest, `,"zxid":`); !ok {
		return
	}
	if zxid, rest, ok = number(rest); !ok {
		return
	}
	if r, has := cut(rest, `,"data":"`); has {
		var enc []byte
		if enc, rest, ok = plainString(r); !ok {
			return
		}
		data = make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(data, enc)
		if err != nil {
			ok = false
			return
		}
		data = data[:n]
	}
	if string(rest) != "}" {
		ok = false
		return
	}
	return id, typ, string(p), zxid, data, true
}

func cut(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// number reads the digits of an unsigned JSON integer.
func number(b []byte) (uint64, []byte, bool) {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || (n > 1 && b[0] == '0') {
		return 0, b, false
	}
	v, err := strconv.ParseUint(string(b[:n]), 10, 64)
	if err != nil {
		return 0, b, false
	}
	return v, b[n:], true
}

// plainString reads the rest of a JSON string up to its closing quote; a
// string with an escape, a control character or invalid UTF-8 is not
// plain (the general decoder handles it).
func plainString(b []byte) (s, rest []byte, ok bool) {
	end := bytes.IndexByte(b, '"')
	if end < 0 {
		return nil, b, false
	}
	s = b[:end]
	ascii := true
	for _, ch := range s {
		if ch == '\\' || ch < 0x20 {
			return nil, b, false
		}
		if ch >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return nil, b, false
	}
	return s, b[end+1:], true
}
