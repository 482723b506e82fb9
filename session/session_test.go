package session

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestTable(t *testing.T) {
	tb := NewTable()
	a := Session{ID: 7, TimeoutMs: 10000, SecretHash: HashSecret("s7"), CreatedMs: 100}
	b := Session{ID: 3, TimeoutMs: 2000, SecretHash: HashSecret("s3"), CreatedMs: 200}
	for _, s := range []Session{a, b} {
		if err := tb.Create(s); err != nil {
			t.Fatalf("Create(%d): %v", s.ID, err)
		}
	}
	if err := tb.Create(Session{ID: 7}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Create = %v, want ErrExists", err)
	}
	if got, ok := tb.Get(7); !ok || got != a {
		t.Errorf("Get(7) = %+v, %v; want %+v (the duplicate must not overwrite)", got, ok, a)
	}
	if tb.Len() != 2 || !slices.Equal(tb.IDs(), []uint64{3, 7}) {
		t.Errorf("Len %d IDs %v", tb.Len(), tb.IDs())
	}
	if err := tb.Close(3); err != nil {
		t.Fatalf("Close(3): %v", err)
	}
	if err := tb.Close(3); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Close = %v, want ErrNotFound", err)
	}
	if _, ok := tb.Get(3); ok || tb.Len() != 1 {
		t.Errorf("closed session still present")
	}
}

func TestSecret(t *testing.T) {
	s := Session{ID: 1, SecretHash: HashSecret("right")}
	tests := []struct {
		secret string
		want   bool
	}{{"right", true}, {"wrong", false}, {"", false}, {"right ", false}}
	for _, tt := range tests {
		if got := CheckSecret(s, tt.secret); got != tt.want {
			t.Errorf("CheckSecret(%q) = %v, want %v", tt.secret, got, tt.want)
		}
	}
	if CheckSecret(Session{}, "") {
		t.Errorf("a zero session accepted the empty secret")
	}
}

func sampleTable(t testing.TB) *Table {
	tb := NewTable()
	for i, id := range []uint64{1 << 63, 5, 1, 300} {
		s := Session{ID: id, TimeoutMs: int64(i+1) * 1000, SecretHash: HashSecret(string(rune('a' + i))), CreatedMs: -int64(i)}
		if err := tb.Create(s); err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

func snap(t testing.TB, tb *Table) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tb.WriteSnapshot(&buf); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, tb := range []*Table{NewTable(), sampleTable(t)} {
		b := snap(t, tb)
		got, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("ReadSnapshot: %v", err)
		}
		if !slices.Equal(got.IDs(), tb.IDs()) {
			t.Fatalf("IDs %v, want %v", got.IDs(), tb.IDs())
		}
		for _, id := range tb.IDs() {
			want, _ := tb.Get(id)
			if s, _ := got.Get(id); s != want {
				t.Errorf("session %d = %+v, want %+v", id, s, want)
			}
		}
		if b2 := snap(t, got); !bytes.Equal(b, b2) {
			t.Errorf("re-encoded snapshot differs")
		}
	}
}

func TestSnapshotCorruption(t *testing.T) {
	b := snap(t, sampleTable(t))
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			if _, err := ReadSnapshot(bytes.NewReader(c)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("byte %d ^ %#x: err = %v, want ErrBadSnapshot", i, mask, err)
			}
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := ReadSnapshot(bytes.NewReader(b[:n])); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("truncated at %d: err = %v, want ErrBadSnapshot", n, err)
		}
	}
	if _, err := ReadSnapshot(bytes.NewReader(append(bytes.Clone(b), 0))); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("trailing byte: err = %v", err)
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(snap(f, NewTable()))
	f.Add(snap(f, sampleTable(f)))
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		b2 := snap(t, tb)
		tb2, err := ReadSnapshot(bytes.NewReader(b2))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if !bytes.Equal(snap(t, tb2), b2) {
			t.Fatalf("second round trip differs")
		}
	})
}
