package wire

import "encoding/json"

// request reads the fields of a Request; sub-ops of a multi recurse.
func (d *decoder) request(r *Request, depth int) bool {
	var s seen
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return s.first(0) && d.uint(&r.ID)
		case "op":
			return s.first(1) && d.str(&r.Op)
		case "path":
			return s.first(2) && d.str(&r.Path)
		case "data":
			return s.first(3) && d.bytes(&r.Data)
		case "version":
			return s.first(4) && d.intPtr(&r.Version)
		case "ephemeral":
			return s.first(5) && d.boolean(&r.Ephemeral)
		case "sequential":
			return s.first(6) && d.boolean(&r.Sequential)
		case "container":
			return s.first(7) && d.boolean(&r.Container)
		case "ttl_ms":
			return s.first(8) && d.int(&r.TTLMs)
		case "recursive":
			return s.first(9) && d.boolean(&r.Recursive)
		case "local":
			return s.first(10) && d.boolean(&r.Local)
		case "since":
			return s.first(11) && d.uint(&r.Since)
		case "watch":
			return s.first(12) && d.rawScalar(&r.Watch)
		case "ops":
			return s.first(13) && depth < maxFastDepth && d.requests(&r.Ops, depth+1)
		case "timeout_ms":
			return s.first(14) && d.int(&r.TimeoutMs)
		case "session":
			return s.first(15) && d.str(&r.Session)
		case "secret":
			return s.first(16) && d.str(&r.Secret)
		case "last_zxid":
			return s.first(17) && d.uint(&r.LastZxid)
		case "auth":
			return s.first(18) && d.auth(&r.Auth)
		case "shared":
			return s.first(19) && d.boolean(&r.Shared)
		case "wait_ms":
			return s.first(20) && d.intPtr(&r.WaitMs)
		case "value":
			return s.first(21) && d.bytes(&r.Value)
		}
		return false
	})
}

// requests reads the ops of a multi; [] is an empty, non-nil slice, as
// encoding/json makes it (the server tells it from a missing field).
func (d *decoder) requests(dst *[]Request, depth int) bool {
	if d.null() {
		return true
	}
	ops := make([]Request, 0, 4)
	ok := d.array(func() bool {
		ops = append(ops, Request{})
		return d.request(&ops[len(ops)-1], depth)
	})
	*dst = ops
	return ok
}

// rawScalar reads the watch field, a json.RawMessage, when it is true,
// false, null or an integer: encoding/json keeps the literal's bytes (null
// too, since RawMessage has its own UnmarshalJSON).
func (d *decoder) rawScalar(dst *json.RawMessage) bool {
	start := d.i
	var b bool
	var n int64
	if !d.boolean(&b) && !d.int(&n) {
		// boolean accepts null as well; anything else is left to json.
		return false
	}
	*dst = append(json.RawMessage(nil), d.b[start:d.i]...)
	return true
}

func (d *decoder) auth(dst **Auth) bool {
	if d.null() {
		return true
	}
	a := new(Auth)
	*dst = a
	var s seen
	return d.object(func(key []byte) bool {
		if string(key) == "token" {
			return s.first(0) && d.str(&a.Token)
		}
		return false
	})
}

// response reads the fields of a Response; the results of a multi recurse.
// Members and resync nodes are rare and left to encoding/json.
func (d *decoder) response(r *Response, depth int) bool {
	var s seen
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return s.first(0) && d.uint(&r.ID)
		case "ok":
			return s.first(1) && d.boolean(&r.OK)
		case "zxid":
			return s.first(2) && d.uint(&r.Zxid)
		case "error":
			return s.first(3) && d.error(&r.Error)
		case "index":
			return s.first(4) && d.index(&r.Index)
		case "session":
			return s.first(5) && d.str(&r.Session)
		case "secret":
			return s.first(6) && d.str(&r.Secret)
		case "timeout_ms":
			return s.first(7) && d.int(&r.TimeoutMs)
		case "server":
			return s.first(8) && d.str(&r.Server)
		case "renewed_ago_ms":
			return s.first(9) && d.intPtr(&r.RenewedAgoMs)
		case "members_hash":
			return s.first(10) && d.uint(&r.MembersHash)
		case "path":
			return s.first(11) && d.str(&r.Path)
		case "data":
			return s.first(12) && d.bytes(&r.Data)
		case "stat":
			return s.first(13) && d.optStat(&r.Stat)
		case "children":
			return s.first(14) && d.strings(&r.Children)
		case "results":
			return s.first(15) && depth < maxFastDepth && d.responses(&r.Results, depth+1)
		case "watch":
			return s.first(16) && d.uint(&r.Watch)
		case "no_leader":
			return s.first(17) && d.boolean(&r.NoLeader)
		case "token":
			return s.first(18) && d.uintPtr(&r.Token)
		case "node":
			return s.first(19) && d.str(&r.Node)
		case "value":
			return s.first(20) && d.bytes(&r.Value)
		case "event":
			return s.first(21) && d.str(&r.Event)
		case "state":
			return s.first(22) && d.str(&r.State)
		case "type":
			return s.first(23) && d.str(&r.Type)
		case "last":
			return s.first(24) && d.boolean(&r.Last)
		}
		return false
	})
}

func (d *decoder) responses(dst *[]Response, depth int) bool {
	if d.null() {
		return true
	}
	rs := make([]Response, 0, 4)
	ok := d.array(func() bool {
		rs = append(rs, Response{})
		return d.response(&rs[len(rs)-1], depth)
	})
	*dst = rs
	return ok
}

func (d *decoder) strings(dst *[]string) bool {
	if d.null() {
		return true
	}
	ss := make([]string, 0, 8)
	ok := d.array(func() bool {
		// A null element leaves it "", as encoding/json does.
		ss = append(ss, "")
		return d.str(&ss[len(ss)-1])
	})
	*dst = ss
	return ok
}

func (d *decoder) error(dst **Error) bool {
	if d.null() {
		return true
	}
	e := new(Error)
	*dst = e
	var s seen
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "code":
			var c string
			ok := s.first(0) && d.str(&c)
			e.Code = Code(c)
			return ok
		case "message":
			return s.first(1) && d.str(&e.Message)
		}
		return false
	})
}

func (d *decoder) index(dst **int) bool {
	if d.null() {
		return true
	}
	var n int64
	if !d.int(&n) || int64(int(n)) != n {
		return false
	}
	v := int(n)
	*dst = &v
	return true
}

func (d *decoder) uintPtr(dst **uint64) bool {
	if d.null() {
		return true
	}
	v := new(uint64)
	*dst = v
	return d.uint(v)
}

// optStat reads a stat or null; OptStat's UnmarshalJSON marks both Valid.
func (d *decoder) optStat(dst *OptStat) bool {
	dst.Valid = true
	if d.null() {
		return true
	}
	st := new(Stat)
	dst.Stat = st
	var s seen
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "czxid":
			return s.first(0) && d.uint(&st.Czxid)
		case "mzxid":
			return s.first(1) && d.uint(&st.Mzxid)
		case "pzxid":
			return s.first(2) && d.uint(&st.Pzxid)
		case "ctime":
			return s.first(3) && d.int(&st.Ctime)
		case "mtime":
			return s.first(4) && d.int(&st.Mtime)
		case "version":
			return s.first(5) && d.int(&st.Version)
		case "cversion":
			return s.first(6) && d.int(&st.Cversion)
		case "data_length":
			return s.first(7) && d.int(&st.DataLength)
		case "num_children":
			return s.first(8) && d.int(&st.NumChildren)
		case "ephemeral_owner":
			return s.first(9) && d.str(&st.EphemeralOwner)
		}
		return false
	})
}
