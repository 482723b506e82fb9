package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// The codec's fuzz targets are differential: encoding/json is the
// reference, and the hand-written paths must agree with it on every input.

// codecSeeds are frames of every shape the fast paths take, and a few
// they must decline; f.Add'ed to each target next to testdata/fuzz.
var codecSeeds = []string{
	`{"id":1,"op":"create","path":"/a","data":"aGk=","ephemeral":true,"sequential":true}`,
	`{"id":2,"op":"get","path":"/a","watch":true,"local":true}`,
	`{"id":3,"op":"unwatch","watch":12}`,
	`{"id":4,"op":"multi","ops":[{"op":"check","path":"/a","version":0},{"op":"delete","path":"/b","version":-1}]}`,
	`{"id":5,"op":"multi","ops":[]}`,
	`{"op":"hello","timeout_ms":10000,"auth":{"token":"t"}}`,
	`{"op":"hello","session":"00000000000000ab","secret":"s","last_zxid":7}`,
	`{"id":6,"op":"lock","path":"/l","shared":true,"wait_ms":0}`,
	`{"id":7,"op":"elect","path":"/e","value":""}`,
	` {"id" : 8 , "op":"set","path":"/\u00e9","data":null,"version":null} `,
	`{"id":9,"op":"get","path":"/a\"b","watch":null}`,
	`{"ID":1,"Op":"get"}`,
	`{"id":1,"id":2}`,
	`{"id":1.0,"op":"get"}`,
	`{"id":-1}`,
	`{"id":18446744073709551616}`,
	`{"id":1,"ok":true,"zxid":5,"stat":null}`,
	`{"id":1,"ok":true,"zxid":5,"path":"/a0000000001","stat":{"czxid":1,"mzxid":2,"pzxid":3,"ctime":4,"mtime":5,"version":6,"cversion":7,"data_length":8,"num_children":9,"ephemeral_owner":"00000000000000ab"}}`,
	`{"id":1,"ok":false,"error":{"code":"NO_NODE","message":"/a does not exist"}}`,
	`{"id":1,"ok":false,"error":{"code":"BAD_VERSION","message":"x"},"index":1}`,
	`{"id":1,"ok":true,"zxid":3,"children":["a","b"],"stat":{"czxid":1}}`,
	`{"id":1,"ok":true,"zxid":3,"results":[{"id":0,"ok":true,"path":"/x"},{"id":0,"ok":true,"stat":{"version":1}}]}`,
	`{"id":1,"ok":true,"value":null,"session":null,"token":null}`,
	`{"id":1,"ok":true,"token":4,"node":"/l/n0000000001"}`,
	`{"id":1,"ok":true,"renewed_ago_ms":12,"members_hash":99,"timeout_ms":2000}`,
	`{"event":"watch","watch":3,"type":"created","path":"/a","zxid":9,"data":"aGk="}`,
	`{"event":"session","state":"expired"}`,
	`{"id":1,"ok":true,"members":[{"name":"a","client_url":"ws://x","peer_url":"p","role":"leader","alive":true}]}`,
	`{"id":1,"data":"a\u0047k="}`,
	`{"id":1,"path":"<&>"}`,
	`{"id":1,"ok":false,"error":{"code":"BAD_PATH","message":"path \"a\" \u00e9 \ud83d\ude00 \\ \/"}}`,
	`[1]`,
	`null`,
	`{"id":1`,
}

// FuzzCodecDecodeRequest: DecodeRequest gives what json.Unmarshal gives,
// value and error, and whenever the fast path accepts a frame,
// encoding/json accepts it too and decodes the same value.
func FuzzCodecDecodeRequest(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecoder(t, in, decodeRequestFast, DecodeRequest) })
}

// FuzzCodecDecodeResponse is FuzzCodecDecodeRequest for responses.
func FuzzCodecDecodeResponse(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecoder(t, in, decodeResponseFast, DecodeResponse) })
}

// checkDecoder holds a decoder of T (and its fast path) to json.Unmarshal
// on in.
func checkDecoder[T any](t *testing.T, in []byte, fast func([]byte, *T) bool, decode func([]byte, *T) error) {
	t.Helper()
	var want T
	werr := json.Unmarshal(in, &want)
	var quick T
	if fast(in, &quick) {
		if werr != nil {
			t.Fatalf("fast path accepted %q, which encoding/json rejects: %v", in, werr)
		}
		if !reflect.DeepEqual(quick, want) {
			t.Fatalf("fast path decoded %q as\n%#v\nencoding/json as\n%#v", in, quick, want)
		}
	}
	var got T
	gerr := decode(in, &got)
	sameResult(t, in, gerr, werr)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding %q gave %#v, json %#v", in, got, want)
	}
}

func sameResult(t *testing.T, in []byte, got, want error) {
	t.Helper()
	if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
		t.Fatalf("decoding %q: error %v, encoding/json's %v", in, got, want)
	}
}

// FuzzCodecAppendRequest: AppendRequest writes json.Marshal's bytes (so its
// output is valid JSON and decodes to the same value) for requests that
// encoding/json decodes from in, with s, which may be any bytes at all,
// planted in a string field, the watch field or the bytes fields.
func FuzzCodecAppendRequest(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s), "<a>&\u2028\xff\x01\"\\", uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, s string, where uint8) {
		var r Request
		if json.Unmarshal(in, &r) != nil {
			return
		}
		switch where % 6 {
		case 1:
			r.Path = s
		case 2:
			r.Auth = &Auth{Token: s}
		case 3:
			r.Watch = json.RawMessage(s)
		case 4:
			r.Ops = append(r.Ops, Request{Op: s, Data: []byte(s)})
		case 5:
			r.Value = []byte(s)
		}
		want, werr := json.Marshal(&r)
		got, gerr := AppendRequest([]byte("prefix"), &r)
		sameEncoding(t, &r, got, gerr, want, werr)
	})
}

// FuzzCodecAppendResponse is FuzzCodecAppendRequest for responses.
func FuzzCodecAppendResponse(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s), "<a>&\u2029\xfe\x1f\"\\", uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, s string, where uint8) {
		var r Response
		if json.Unmarshal(in, &r) != nil {
			return
		}
		switch where % 6 {
		case 1:
			r.Path = s
		case 2:
			r.Error = &Error{Code: Code(s), Message: s}
		case 3:
			r.Children = append(r.Children, s)
		case 4:
			r.Results = append(r.Results, Response{Node: s, Data: []byte(s), Stat: SomeStat(&Stat{EphemeralOwner: s})})
		case 5:
			r.Stat = SomeStat(nil)
			r.Event = s
		}
		want, werr := json.Marshal(&r)
		got, gerr := AppendResponse([]byte("prefix"), &r)
		sameEncoding(t, &r, got, gerr, want, werr)
	})
}

func sameEncoding(t *testing.T, v any, got []byte, gerr error, want []byte, werr error) {
	t.Helper()
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("encoding %#v: error %v, json.Marshal's %v", v, gerr, werr)
	}
	if werr != nil {
		return
	}
	got, ok := bytes.CutPrefix(got, []byte("prefix"))
	if !ok {
		t.Fatalf("encoding %#v: the buffer's contents were lost", v)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding %#v:\n got %s\nwant %s", v, got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("encoding %#v: invalid JSON %s", v, got)
	}
}
