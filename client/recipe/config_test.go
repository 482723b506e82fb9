package recipe_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

type limits struct {
	MaxConns int `json:"max_conns"`
}

// waitValue polls Get until cond holds or the deadline passes.
func waitValue[T any](t *testing.T, cf *recipe.Config[T], cond func(recipe.ConfigValue[T], bool) bool) recipe.ConfigValue[T] {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok := cf.Get()
		if cond(v, ok) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("config never got there: last %+v, %v, err %v", v, ok, cf.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConfigValuesInOrder(t *testing.T) {
	srv := arbortest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eps := srv.Endpoints()
	reader := dialTest(t, ctx, eps)
	writer := dialTest(t, ctx, append(eps[1:], eps[0]))
	const path = "/config/limits"
	if _, _, err := writer.Create(ctx, "/config", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writer.Create(ctx, path, []byte(`{"max_conns":0}`)); err != nil {
		t.Fatal(err)
	}
	cf, err := recipe.NewConfig[limits](ctx, reader, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := cf.Get(); !ok || v.Value.MaxConns != 0 || v.Version != 0 {
		t.Fatalf("first value = %+v, %v", v, ok)
	}
	got := make(chan []int, 1)
	go func() {
		var seen []int
		for v := range cf.Updates() {
			seen = append(seen, v.Value.MaxConns)
		}
		got <- seen
	}()
	const n = 100
	var last *client.Stat
	for i := 1; i <= n; i++ {
		if last, err = writer.Set(ctx, path, fmt.Appendf(nil, `{"max_conns":%d}`, i), client.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	v := waitValue(t, cf, func(v recipe.ConfigValue[limits], _ bool) bool { return v.Value.MaxConns == n })
	if v.Version != last.Version || v.Zxid != last.Mzxid {
		t.Errorf("last value at version %d zxid %d, the write was at %d, %d", v.Version, v.Zxid, last.Version, last.Mzxid)
	}
	if cf.Err() != nil {
		t.Errorf("Err = %v with a good value", cf.Err())
	}
	if err := cf.Close(ctx); err != nil {
		t.Fatal(err)
	}
	seen := <-got
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("values out of order: %v", seen)
		}
	}
	if len(seen) == 0 || seen[len(seen)-1] != n {
		t.Fatalf("updates ended with %v, want the last write %d", seen, n)
	}
	if !errors.Is(cf.Err(), client.ErrWatchClosed) {
		t.Errorf("Err after Close = %v", cf.Err())
	}
}

func TestConfigBadDataAndDelete(t *testing.T) {
	srv := arbortest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialTest(t, ctx, srv.Endpoints())
	const path = "/limits"
	cf, err := recipe.NewConfig[limits](ctx, c, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close(ctx)
	if _, ok := cf.Get(); ok || !errors.Is(cf.Err(), recipe.ErrConfigMissing) {
		t.Fatalf("before the node exists: Get ok %v, Err %v", ok, cf.Err())
	}
	if _, _, err := c.Create(ctx, path, []byte(`{"max_conns":7}`)); err != nil {
		t.Fatal(err)
	}
	waitValue(t, cf, func(v recipe.ConfigValue[limits], ok bool) bool { return ok && v.Value.MaxConns == 7 })

	st, err := c.Set(ctx, path, []byte("max_conns=8"), client.AnyVersion)
	if err != nil {
		t.Fatal(err)
	}
	waitErr(t, func() bool { return errors.Is(cf.Err(), recipe.ErrConfigDecode) })
	var syntax *json.SyntaxError
	if !errors.As(cf.Err(), &syntax) {
		t.Errorf("Err %v does not wrap the decoder's error", cf.Err())
	}
	if v, ok := cf.Get(); !ok || v.Value.MaxConns != 7 || v.Version != 0 {
		t.Errorf("after bad data Get = %+v, %v; want the last good value", v, ok)
	}

	if _, err := c.Set(ctx, path, []byte(`{"max_conns":9}`), st.Version); err != nil {
		t.Fatal(err)
	}
	v := waitValue(t, cf, func(v recipe.ConfigValue[limits], _ bool) bool { return v.Value.MaxConns == 9 })
	if v.Version != st.Version+1 || cf.Err() != nil {
		t.Errorf("after a good write: %+v, Err %v", v, cf.Err())
	}

	if err := c.Delete(ctx, path, client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	waitErr(t, func() bool { return errors.Is(cf.Err(), recipe.ErrConfigMissing) })
	if v, ok := cf.Get(); !ok || v.Value.MaxConns != 9 {
		t.Errorf("after delete Get = %+v, %v; want the last good value", v, ok)
	}
}

func waitErr(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
