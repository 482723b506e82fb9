package wire

import (
	"encoding/json"
	"testing"
)

var (
	benchRequest  = []byte(`{"id":12345,"op":"create","path":"/bench/c12-","data":"MDEyMzQ1Njc4OWFiY2RlZg==","sequential":true}`)
	benchResponse = []byte(`{"id":12345,"ok":true,"zxid":987654,"path":"/bench/c12-0000001234","stat":{"czxid":987654,"mzxid":987654,"pzxid":987654,"ctime":1764640000000,"mtime":1764640000000,"version":0,"cversion":0,"data_length":16,"num_children":0,"ephemeral_owner":""}}`)
)

// The codec against encoding/json on a create and its answer, the frames
// of BenchmarkServerCreate.
func BenchmarkDecodeRequest(b *testing.B) {
	b.Run("codec", func(b *testing.B) {
		for b.Loop() {
			var r Request
			if err := DecodeRequest(benchRequest, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			var r Request
			if err := json.Unmarshal(benchRequest, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeResponse(b *testing.B) {
	b.Run("codec", func(b *testing.B) {
		for b.Loop() {
			var r Response
			if err := DecodeResponse(benchResponse, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			var r Response
			if err := json.Unmarshal(benchResponse, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendResponse(b *testing.B) {
	var r Response
	if err := json.Unmarshal(benchResponse, &r); err != nil {
		b.Fatal(err)
	}
	b.Run("codec", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = AppendResponse(buf[:0], &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
