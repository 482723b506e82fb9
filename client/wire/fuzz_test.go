package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeRequest decodes arbitrary bytes as a request, as a server does
// with every frame: no panic, and the watch field's two readings never
// panic either.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"id":1,"op":"create","path":"/a","data":"aGk=","version":3}`))
	f.Add([]byte(`{"id":2,"op":"get","path":"/a","watch":true}`))
	f.Add([]byte(`{"id":3,"op":"unwatch","watch":12}`))
	f.Add([]byte(`{"id":4,"op":"multi","ops":[{"op":"check","path":"/a","version":0}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Request
		if err := json.Unmarshal(in, &r); err != nil {
			return
		}
		_, _ = r.WatchFlag()
		_, _ = r.WatchID()
		_ = r.VersionOr(-1)
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		var again Request
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", b, err)
		}
	})
}

// FuzzDecodeResponse decodes arbitrary bytes as a response, as the client
// does with every frame, and checks that the stat field's absent / null /
// present states survive a round trip.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"id":1,"ok":true,"zxid":5,"stat":null}`))
	f.Add([]byte(`{"id":1,"ok":true,"zxid":5,"stat":{"czxid":1,"version":2,"ephemeral_owner":""}}`))
	f.Add([]byte(`{"id":1,"ok":false,"error":{"code":"NO_NODE","message":"/a does not exist"}}`))
	f.Add([]byte(`{"event":"watch","watch":3,"type":"created","path":"/a","zxid":9}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Response
		if err := json.Unmarshal(in, &r); err != nil {
			return
		}
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("decoded response does not encode: %v", err)
		}
		var again Response
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-encoded response %s does not decode: %v", b, err)
		}
		if r.Stat.Valid != again.Stat.Valid || (r.Stat.Stat == nil) != (again.Stat.Stat == nil) {
			t.Fatalf("stat field changed in a round trip: %+v -> %+v (%s)", r.Stat, again.Stat, b)
		}
		if r.Stat.Stat != nil && !reflect.DeepEqual(*r.Stat.Stat, *again.Stat.Stat) {
			t.Fatalf("stat changed in a round trip: %+v -> %+v", *r.Stat.Stat, *again.Stat.Stat)
		}
	})
}
