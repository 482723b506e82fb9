package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/arbor-db/arbor/client/wire"
)

func TestCreateFlagValidation(t *testing.T) {
	ts := startFake(t, nil)
	c := helloed(t, ts.addr)
	cases := []struct {
		flags   string // JSON fields added to a create of a fresh path
		message string // substring of the BAD_REQUEST message; "" means success
	}{
		{`"ttl_ms":-1`, "ttl_ms: must not be negative"},
		{`"ttl_ms":1000,"ephemeral":true`, "ttl_ms and ephemeral"},
		{`"container":true,"ephemeral":true`, "container and ephemeral"},
		{`"container":true,"ttl_ms":1000`, "container and ttl_ms"},
		{`"container":true,"sequential":true`, "container and sequential"},
		{`"container":true,"ephemeral":true,"sequential":true`, "container and ephemeral"},
		// What ZooKeeper's CreateMode does have stays allowed.
		{`"ttl_ms":1000`, ""},
		{`"ttl_ms":1000,"sequential":true`, ""},
		{`"ephemeral":true,"sequential":true`, ""},
		{`"container":true`, ""},
		{`"ttl_ms":0,"ephemeral":true`, ""},
	}
	for i, tc := range cases {
		path := fmt.Sprintf("/f%d", i)
		t.Run(tc.flags, func(t *testing.T) {
			// Alone.
			id := uint64(100 + i)
			r := c.call(fmt.Sprintf(`{"id":%d,"op":"create","path":%q,%s}`, id, path, tc.flags))
			checkFlagResult(t, r, id, tc.message, nil)
			// Inside a multi, after a valid sub-op: the index names it and
			// nothing is created.
			sub := path + "m"
			r = c.call(fmt.Sprintf(`{"id":%d,"op":"multi","ops":[{"op":"create","path":"%s0"},{"op":"create","path":%q,%s}]}`,
				id+1000, sub, sub, tc.flags))
			one := 1
			checkFlagResult(t, r, id+1000, tc.message, &one)
			if tc.message != "" {
				if r := c.call(fmt.Sprintf(`{"id":1,"op":"exists","path":"%s0"}`, sub)); !r.OK || r.Stat.Stat != nil {
					t.Errorf("a refused multi created %s0: %+v", sub, r)
				}
			}
			c.mustAnswer()
		})
	}
}

func checkFlagResult(t *testing.T, r wire.Response, id uint64, message string, index *int) {
	t.Helper()
	if r.ID != id {
		t.Fatalf("response id %d, want %d", r.ID, id)
	}
	if message == "" {
		if !r.OK {
			t.Errorf("refused: %+v", r.Error)
		}
		return
	}
	if r.OK || r.Error == nil || r.Error.Code != wire.CodeBadRequest || !strings.Contains(r.Error.Message, message) {
		t.Errorf("got ok %v error %+v, want BAD_REQUEST mentioning %q", r.OK, r.Error, message)
	}
	if index != nil && (r.Index == nil || *r.Index != *index) {
		t.Errorf("multi index %v, want %d", r.Index, *index)
	}
}
