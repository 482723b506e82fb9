package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func intp(v int) *int      { return &v }
func stat(version int64) OptStat {
	return SomeStat(&Stat{Czxid: 3, Mzxid: 4, Pzxid: 3, Ctime: 1700000000000, Mtime: 1700000000001, Version: version, DataLength: 2})
}

// Request frames as PROTOCOL.md writes them: each decodes on the fast path
// (fast) or through encoding/json, to the value given.
func TestDecodeRequestFrames(t *testing.T) {
	tests := []struct {
		frame string
		want  Request
		fast  bool
	}{
		{`{"op":"hello","timeout_ms":10000}`, Request{Op: OpHello, TimeoutMs: 10000}, true},
		{`{"op":"hello","timeout_ms":10000,"auth":{"token":"tok"}}`, Request{Op: OpHello, TimeoutMs: 10000, Auth: &Auth{Token: "tok"}}, true},
		{`{"op":"hello","session":"00000000000000ab","secret":"s3","last_zxid":42}`, Request{Op: OpHello, Session: "00000000000000ab", Secret: "s3", LastZxid: 42}, true},
		{`{"op":"ping"}`, Request{Op: OpPing}, true},
		{`{"id":7,"op":"create","path":"/a","data":"aGk=","ephemeral":true,"sequential":true}`,
			Request{ID: 7, Op: OpCreate, Path: "/a", Data: []byte("hi"), Ephemeral: true, Sequential: true}, true},
		{`{"id":8,"op":"create","path":"/c","container":true,"ttl_ms":500}`, Request{ID: 8, Op: OpCreate, Path: "/c", Container: true, TTLMs: 500}, true},
		{`{"id":9,"op":"get","path":"/a","watch":true,"local":true}`, Request{ID: 9, Op: OpGet, Path: "/a", Watch: json.RawMessage("true"), Local: true}, true},
		{`{"id":10,"op":"exists","path":"/a","watch":false}`, Request{ID: 10, Op: OpExists, Path: "/a", Watch: json.RawMessage("false")}, true},
		{`{"id":11,"op":"set","path":"/a","data":"","version":-1}`, Request{ID: 11, Op: OpSet, Path: "/a", Data: []byte{}, Version: i64(-1)}, true},
		{`{"id":12,"op":"delete","path":"/a","version":3,"recursive":true}`, Request{ID: 12, Op: OpDelete, Path: "/a", Version: i64(3), Recursive: true}, true},
		{`{"id":13,"op":"multi","ops":[{"op":"create","path":"/m"},{"op":"check","path":"/a","version":0}]}`,
			Request{ID: 13, Op: OpMulti, Ops: []Request{{Op: OpCreate, Path: "/m"}, {Op: OpCheck, Path: "/a", Version: i64(0)}}}, true},
		{`{"id":14,"op":"multi","ops":[]}`, Request{ID: 14, Op: OpMulti, Ops: []Request{}}, true},
		{`{"id":15,"op":"watch","path":"/","recursive":true,"since":99}`, Request{ID: 15, Op: OpWatch, Path: "/", Recursive: true, Since: 99}, true},
		{`{"id":16,"op":"unwatch","watch":12}`, Request{ID: 16, Op: OpUnwatch, Watch: json.RawMessage("12")}, true},
		{`{"id":17,"op":"lock","path":"/l","shared":true,"wait_ms":0}`, Request{ID: 17, Op: OpLock, Path: "/l", Shared: true, WaitMs: i64(0)}, true},
		{`{"id":18,"op":"elect","path":"/e","value":"dg=="}`, Request{ID: 18, Op: OpElect, Path: "/e", Value: []byte("v")}, true},
		{" {\n\"id\" : 19 ,\t\"op\":\"sync\", \"path\":\"/\u00e9\"}\r\n", Request{ID: 19, Op: OpSync, Path: "/\u00e9"}, true},
		{`{"id":20,"op":"get","path":"/a","watch":null,"data":null,"version":null}`, Request{ID: 20, Op: OpGet, Path: "/a", Watch: json.RawMessage("null")}, true},
		// Declined: encoding/json decides, and says the same as always.
		{`{"id":21,"op":"get","path":"/a","extra":{"x":[1]}}`, Request{ID: 21, Op: OpGet, Path: "/a"}, false},
		{`{"ID":22,"OP":"get"}`, Request{ID: 22, Op: OpGet}, false},
		{`{"id":23,"op":"get","path":"/\u0061\"\\\/\n"}`, Request{ID: 23, Op: OpGet, Path: "/a\"\\/\n"}, true},
		{`{"id":23,"op":"get","path":"/\ud83d\ude00"}`, Request{ID: 23, Op: OpGet, Path: "/\U0001F600"}, false},
		{`{"id":24,"op":"get","path":"/a","path":"/b"}`, Request{ID: 24, Op: OpGet, Path: "/b"}, false},
		{`{"id":25,"op":"watch","watch":{"x": 1}}`, Request{ID: 25, Op: OpWatch, Watch: json.RawMessage(`{"x": 1}`)}, false},
	}
	for _, tt := range tests {
		var fast Request
		if got := decodeRequestFast([]byte(tt.frame), &fast); got != tt.fast {
			t.Errorf("%s: fast path taken = %v, want %v", tt.frame, got, tt.fast)
		}
		var got Request
		if err := DecodeRequest([]byte(tt.frame), &got); err != nil {
			t.Errorf("%s: %v", tt.frame, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tt.frame, got, tt.want)
		}
	}
}

// Malformed requests get encoding/json's own error, the one the server's
// BAD_REQUEST message is made from, and the id it managed to read.
func TestDecodeRequestErrors(t *testing.T) {
	for _, frame := range []string{
		``, `{`, `[]`, `"x"`, `{"id":1,"op":"get"}x`, `{"id":1.5,"op":"get"}`, `{"id":-1}`,
		`{"id":2,"op":7}`, `{"id":3,"op":"set","data":"!!"}`, `{"id":4,"ops":{}}`, `{"id":5,"version":1e3}`,
		`{"id":6,"path":"a` + "\x01" + `"}`, `{"id":18446744073709551616}`,
	} {
		var want Request
		werr := json.Unmarshal([]byte(frame), &want)
		var got Request
		err := DecodeRequest([]byte(frame), &got)
		if werr == nil || err == nil || err.Error() != werr.Error() || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: DecodeRequest = %#v, %v; json.Unmarshal = %#v, %v", frame, got, err, want, werr)
		}
	}
}

// Response frames of PROTOCOL.md, in json.Marshal's field order: each
// encodes to exactly these bytes and decodes back on the fast path.
func TestResponseFrames(t *testing.T) {
	tests := []struct {
		frame string
		resp  Response
	}{
		{`{"id":0,"ok":true,"session":"00000000000000ab","secret":"s3","timeout_ms":10000,"server":"m1"}`,
			Response{OK: true, Session: "00000000000000ab", Secret: "s3", TimeoutMs: 10000, Server: "m1"}},
		{`{"id":2,"ok":true,"zxid":9,"renewed_ago_ms":0,"members_hash":77}`, Response{ID: 2, OK: true, Zxid: 9, RenewedAgoMs: i64(0), MembersHash: 77}},
		{`{"id":3,"ok":true,"zxid":5,"path":"/a0000000001","stat":{"czxid":3,"mzxid":4,"pzxid":3,"ctime":1700000000000,"mtime":1700000000001,"version":0,"cversion":0,"data_length":2,"num_children":0,"ephemeral_owner":""}}`,
			Response{ID: 3, OK: true, Zxid: 5, Path: "/a0000000001", Stat: stat(0)}},
		{`{"id":4,"ok":true,"zxid":5,"data":"aGk=","stat":{"czxid":3,"mzxid":4,"pzxid":3,"ctime":1700000000000,"mtime":1700000000001,"version":1,"cversion":0,"data_length":2,"num_children":0,"ephemeral_owner":""},"watch":6}`,
			Response{ID: 4, OK: true, Zxid: 5, Data: []byte("hi"), Stat: stat(1), Watch: 6}},
		{`{"id":5,"ok":true,"zxid":5,"stat":null}`, Response{ID: 5, OK: true, Zxid: 5, Stat: SomeStat(nil)}},
		{`{"id":6,"ok":true,"zxid":5,"children":["a","b"]}`, Response{ID: 6, OK: true, Zxid: 5, Children: []string{"a", "b"}}},
		{`{"id":7,"ok":false,"error":{"code":"NO_NODE","message":"/a \u003cnone\u003e \u0026 \"x\"\n"}}`,
			Response{ID: 7, Error: &Error{Code: CodeNoNode, Message: "/a <none> & \"x\"\n"}}},
		{`{"id":8,"ok":false,"error":{"code":"BAD_VERSION","message":"version 2 is not 3"},"index":1}`,
			Response{ID: 8, Error: &Error{Code: CodeBadVersion, Message: "version 2 is not 3"}, Index: intp(1)}},
		{`{"id":9,"ok":true,"zxid":12,"results":[{"id":0,"ok":true,"path":"/m","stat":null},{"id":0,"ok":true}]}`,
			Response{ID: 9, OK: true, Zxid: 12, Results: []Response{{OK: true, Path: "/m", Stat: SomeStat(nil)}, {OK: true}}}},
		{`{"id":10,"ok":true,"zxid":12,"token":12,"node":"/l/lock-0000000003"}`, Response{ID: 10, OK: true, Zxid: 12, Token: u64(12), Node: "/l/lock-0000000003"}},
		{`{"id":0,"ok":false,"zxid":9,"path":"/a","data":"aGk=","watch":3,"event":"watch","type":"data"}`,
			Response{Zxid: 9, Path: "/a", Data: []byte("hi"), Watch: 3, Event: EventWatch, Type: WatchData}},
		{`{"id":0,"ok":false,"event":"session","state":"expired"}`, Response{Event: EventSession, State: SessionExpired}},
	}
	for _, tt := range tests {
		b, err := AppendResponse(nil, &tt.resp)
		if err != nil || string(b) != tt.frame {
			t.Errorf("AppendResponse(%#v) = %s, %v; want %s", tt.resp, b, err, tt.frame)
		}
		var got Response
		if !decodeResponseFast([]byte(tt.frame), &got) {
			t.Errorf("%s: not on the fast path", tt.frame)
		}
		if !reflect.DeepEqual(got, tt.resp) {
			t.Errorf("%s:\n got %#v\nwant %#v", tt.frame, got, tt.resp)
		}
	}
}

// A leader answer's nulls and a members answer go their own ways: the
// nulls are zero values, members are left to encoding/json both ways.
func TestResponseDeclined(t *testing.T) {
	var r Response
	if !decodeResponseFast([]byte(`{"id":1,"ok":true,"zxid":2,"value":null,"session":null,"token":null}`), &r) ||
		!reflect.DeepEqual(r, Response{ID: 1, OK: true, Zxid: 2}) {
		t.Errorf("leader answer with no leader: %#v", r)
	}
	members := `{"id":1,"ok":true,"members":[{"name":"a","client_url":"ws://a","peer_url":"http://a","role":"leader","alive":true}]}`
	if decodeResponseFast([]byte(members), &r) {
		t.Errorf("members answer taken by the fast path")
	}
	if err := DecodeResponse([]byte(members), &r); err != nil || len(r.Members) != 1 || r.Members[0].Role != RoleLeader {
		t.Errorf("members answer: %#v, %v", r, err)
	}
	b, err := AppendResponse([]byte("x"), &r)
	if err != nil || string(b) != "x"+members {
		t.Errorf("members answer encodes as %s, %v", b, err)
	}
}

// Requests encode to json.Marshal's bytes; a watch field that is not a
// plain scalar goes through json.Marshal, which compacts it or refuses it.
func TestAppendRequest(t *testing.T) {
	tests := []struct {
		req     Request
		want    string
		wantErr bool
	}{
		{Request{Op: OpHello, TimeoutMs: 10000, Auth: &Auth{Token: "t<"}}, `{"id":0,"op":"hello","timeout_ms":10000,"auth":{"token":"t\u003c"}}`, false},
		{Request{ID: 3, Op: OpCreate, Path: "/a", Data: []byte("hi"), Sequential: true, Version: i64(-1)}, `{"id":3,"op":"create","path":"/a","data":"aGk=","version":-1,"sequential":true}`, false},
		{Request{ID: 4, Op: OpGet, Path: "/a", Watch: json.RawMessage("true"), Local: true}, `{"id":4,"op":"get","path":"/a","local":true,"watch":true}`, false},
		{Request{ID: 5, Op: OpMulti, Ops: []Request{{Op: OpDelete, Path: "/x", Recursive: true}}}, `{"id":5,"op":"multi","ops":[{"id":0,"op":"delete","path":"/x","recursive":true}]}`, false},
		{Request{ID: 6, Op: OpLock, Path: "/l", WaitMs: i64(0), Shared: true, Value: []byte{0xff}}, `{"id":6,"op":"lock","path":"/l","shared":true,"wait_ms":0,"value":"/w=="}`, false},
		{Request{ID: 7, Op: OpWatch, Watch: json.RawMessage(`{ "a" : "<" }`)}, `{"id":7,"op":"watch","watch":{"a":"\u003c"}}`, false},
		{Request{ID: 8, Op: OpWatch, Watch: json.RawMessage(`{`)}, ``, true},
	}
	for _, tt := range tests {
		b, err := AppendRequest(nil, &tt.req)
		if (err != nil) != tt.wantErr || string(b) != tt.want {
			t.Errorf("AppendRequest(%#v) = %s, %v; want %s", tt.req, b, err, tt.want)
		}
	}
}
