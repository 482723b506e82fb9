package wire

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendResponse appends the JSON of r to buf: the bytes json.Marshal(r)
// makes, written by hand for the common fields. A response carrying
// members or resync nodes is handed to json.Marshal whole.
func AppendResponse(buf []byte, r *Response) ([]byte, error) {
	if !fastResponse(r, 0) {
		b, err := json.Marshal(r)
		return append(buf, b...), err
	}
	return appendResponse(buf, r), nil
}

// AppendRequest appends the JSON of r to buf: the bytes json.Marshal(r)
// makes. A watch field other than true, false or a plain integer (it is a
// json.RawMessage, which json.Marshal validates and compacts) sends the
// request to json.Marshal whole, errors and all.
func AppendRequest(buf []byte, r *Request) ([]byte, error) {
	if !fastRequest(r, 0) {
		b, err := json.Marshal(r)
		return append(buf, b...), err
	}
	return appendRequest(buf, r), nil
}

func fastResponse(r *Response, depth int) bool {
	if len(r.Members) > 0 || len(r.Nodes) > 0 || depth > maxFastDepth {
		return false
	}
	for i := range r.Results {
		if !fastResponse(&r.Results[i], depth+1) {
			return false
		}
	}
	return true
}

func fastRequest(r *Request, depth int) bool {
	if len(r.Watch) > 0 && !plainScalar(r.Watch) || depth > maxFastDepth {
		return false
	}
	for i := range r.Ops {
		if !fastRequest(&r.Ops[i], depth+1) {
			return false
		}
	}
	return true
}

// plainScalar reports whether b is true, false or an integer literal, the
// JSON that json.Marshal copies unchanged out of a RawMessage.
func plainScalar(b []byte) bool {
	d := decoder{b: b}
	var v bool
	var n int64
	return (d.boolean(&v) || d.int(&n)) && d.i == len(b) && string(b) != "null"
}

func appendResponse(b []byte, r *Response) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, r.ID, 10)
	b = append(b, `,"ok":`...)
	b = strconv.AppendBool(b, r.OK)
	b = appendUintField(b, `,"zxid":`, r.Zxid)
	if e := r.Error; e != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendString(b, string(e.Code))
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		b = append(b, '}')
	}
	if r.Index != nil {
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, int64(*r.Index), 10)
	}
	b = appendStringField(b, `,"session":`, r.Session)
	b = appendStringField(b, `,"secret":`, r.Secret)
	b = appendIntField(b, `,"timeout_ms":`, r.TimeoutMs)
	b = appendStringField(b, `,"server":`, r.Server)
	if r.RenewedAgoMs != nil {
		b = append(b, `,"renewed_ago_ms":`...)
		b = strconv.AppendInt(b, *r.RenewedAgoMs, 10)
	}
	b = appendUintField(b, `,"members_hash":`, r.MembersHash)
	b = appendStringField(b, `,"path":`, r.Path)
	b = appendBytesField(b, `,"data":`, r.Data)
	if r.Stat.Valid {
		b = append(b, `,"stat":`...)
		b = appendStat(b, r.Stat.Stat)
	}
	if len(r.Children) > 0 {
		b = append(b, `,"children":[`...)
		for i, c := range r.Children {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	if len(r.Results) > 0 {
		b = append(b, `,"results":[`...)
		for i := range r.Results {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendResponse(b, &r.Results[i])
		}
		b = append(b, ']')
	}
	b = appendUintField(b, `,"watch":`, r.Watch)
	b = appendBoolField(b, `,"no_leader":`, r.NoLeader)
	if r.Token != nil {
		b = append(b, `,"token":`...)
		b = strconv.AppendUint(b, *r.Token, 10)
	}
	b = appendStringField(b, `,"node":`, r.Node)
	b = appendBytesField(b, `,"value":`, r.Value)
	b = appendStringField(b, `,"event":`, r.Event)
	b = appendStringField(b, `,"state":`, r.State)
	b = appendStringField(b, `,"type":`, r.Type)
	b = appendBoolField(b, `,"last":`, r.Last)
	return append(b, '}')
}

// appendStat writes what OptStat's MarshalJSON does: null or the stat.
func appendStat(b []byte, s *Stat) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"czxid":`...)
	b = strconv.AppendUint(b, s.Czxid, 10)
	b = append(b, `,"mzxid":`...)
	b = strconv.AppendUint(b, s.Mzxid, 10)
	b = append(b, `,"pzxid":`...)
	b = strconv.AppendUint(b, s.Pzxid, 10)
	b = append(b, `,"ctime":`...)
	b = strconv.AppendInt(b, s.Ctime, 10)
	b = append(b, `,"mtime":`...)
	b = strconv.AppendInt(b, s.Mtime, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, s.Version, 10)
	b = append(b, `,"cversion":`...)
	b = strconv.AppendInt(b, s.Cversion, 10)
	b = append(b, `,"data_length":`...)
	b = strconv.AppendInt(b, s.DataLength, 10)
	b = append(b, `,"num_children":`...)
	b = strconv.AppendInt(b, s.NumChildren, 10)
	b = append(b, `,"ephemeral_owner":`...)
	b = appendString(b, s.EphemeralOwner)
	return append(b, '}')
}

func appendRequest(b []byte, r *Request) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, r.ID, 10)
	b = append(b, `,"op":`...)
	b = appendString(b, r.Op)
	b = appendStringField(b, `,"path":`, r.Path)
	b = appendBytesField(b, `,"data":`, r.Data)
	if r.Version != nil {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, *r.Version, 10)
	}
	b = appendBoolField(b, `,"ephemeral":`, r.Ephemeral)
	b = appendBoolField(b, `,"sequential":`, r.Sequential)
	b = appendBoolField(b, `,"container":`, r.Container)
	b = appendIntField(b, `,"ttl_ms":`, r.TTLMs)
	b = appendBoolField(b, `,"recursive":`, r.Recursive)
	b = appendBoolField(b, `,"local":`, r.Local)
	b = appendUintField(b, `,"since":`, r.Since)
	if len(r.Watch) > 0 {
		b = append(b, `,"watch":`...)
		b = append(b, r.Watch...)
	}
	if len(r.Ops) > 0 {
		b = append(b, `,"ops":[`...)
		for i := range r.Ops {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRequest(b, &r.Ops[i])
		}
		b = append(b, ']')
	}
	b = appendIntField(b, `,"timeout_ms":`, r.TimeoutMs)
	b = appendStringField(b, `,"session":`, r.Session)
	b = appendStringField(b, `,"secret":`, r.Secret)
	b = appendUintField(b, `,"last_zxid":`, r.LastZxid)
	if r.Auth != nil {
		b = append(b, `,"auth":{"token":`...)
		b = appendString(b, r.Auth.Token)
		b = append(b, '}')
	}
	b = appendBoolField(b, `,"shared":`, r.Shared)
	if r.WaitMs != nil {
		b = append(b, `,"wait_ms":`...)
		b = strconv.AppendInt(b, *r.WaitMs, 10)
	}
	b = appendBytesField(b, `,"value":`, r.Value)
	return append(b, '}')
}

// The append*Field helpers write an omitempty field: nothing when it is
// the zero value.

func appendUintField(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendUint(append(b, key...), v, 10)
}

func appendIntField(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendBoolField(b []byte, key string, v bool) []byte {
	if !v {
		return b
	}
	return append(append(b, key...), "true"...)
}

func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

func appendBytesField(b []byte, key string, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(append(b, key...), '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s with encoding/json's escaping (HTML-safe, as
// json.Marshal does): <, > and & as \u003c.., control characters as \n or
// \u00XX, each byte of invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
