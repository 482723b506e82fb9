package recipe_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/recipe"
)

func TestMutexExcludesAcrossClients(t *testing.T) {
	srv := arbortest.StartCluster(t, 3)
	const clients, rounds = 6, 8
	var holders, overlaps atomic.Int32
	var mu sync.Mutex
	var tokens []uint64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		m := recipe.NewMutex(dialTest(t, context.Background(), srv.Endpoints()), "/jobs/one")
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for range rounds {
				if err := m.Lock(ctx); err != nil {
					errs <- err
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				mu.Lock()
				tokens = append(tokens, m.Token())
				mu.Unlock()
				holders.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if overlaps.Load() != 0 {
		t.Fatalf("%d grants overlapped another holder", overlaps.Load())
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("token %d after %d", tokens[i], tokens[i-1])
		}
	}
}

// One Mutex value is exclusive within the process too.
func TestMutexExcludesGoroutines(t *testing.T) {
	srv := arbortest.Start(t)
	m := recipe.NewMutex(dialTest(t, context.Background(), srv.Endpoints()), "/l")
	ctx := context.Background()
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- m.Lock(ctx) }()
	select {
	case err := <-second:
		t.Fatalf("a second goroutine got the held Mutex (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(ctx); !errors.Is(err, recipe.ErrNotLocked) {
		t.Fatalf("unlock of an unlocked Mutex: %v", err)
	}
}

func TestMutexLost(t *testing.T) {
	srv := arbortest.Start(t)
	ctx := context.Background()
	a, op := dialTest(t, context.Background(), srv.Endpoints()), dialTest(t, context.Background(), srv.Endpoints())
	m := recipe.NewMutex(a, "/l")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Lost():
		t.Fatal("lost right after the grant")
	default:
	}
	// An operator breaks the lock: the holder hears of it.
	kids, _, err := op.Children(ctx, "/l")
	if err != nil || len(kids) != 1 {
		t.Fatalf("children %v %v", kids, err)
	}
	if err := op.Delete(ctx, "/l/"+kids[0], client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the lock node was deleted")
	}
	if err := m.Unlock(ctx); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("unlock of a broken lock: %v, want NOT_HELD", err)
	}
	// The end of the session loses it too.
	b := dialTest(t, context.Background(), srv.Endpoints())
	mb := recipe.NewMutex(b, "/l")
	if err := mb.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	lost := mb.Lost()
	_ = b.Close(ctx)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed when the client closed")
	}
}

// A Lock whose ctx ends withdraws its request: the lock is never granted
// to a caller that gave up.
func TestMutexLockCanceledWithdraws(t *testing.T) {
	srv := arbortest.Start(t)
	ctx := context.Background()
	holder, quitter := dialTest(t, context.Background(), srv.Endpoints()), dialTest(t, context.Background(), srv.Endpoints())
	if err := recipe.NewMutex(holder, "/l").Lock(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := recipe.NewMutex(quitter, "/l").Lock(short); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrCanceled) {
		t.Fatalf("lock with an ending ctx: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		kids, _, _ := holder.Children(ctx, "/l")
		if len(kids) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the quitter's request is still queued: %v", kids)
		}
	}
	if ok, err := recipe.NewMutex(quitter, "/l").TryLock(ctx); ok || err != nil {
		t.Fatalf("TryLock of a held lock: %v %v", ok, err)
	}
}

func TestRWMutexReadersShareWriterWaits(t *testing.T) {
	srv := arbortest.Start(t)
	ctx := context.Background()
	r1, r2 := recipe.NewRWMutex(dialTest(t, context.Background(), srv.Endpoints()), "/rw"), recipe.NewRWMutex(dialTest(t, context.Background(), srv.Endpoints()), "/rw")
	w := recipe.NewRWMutex(dialTest(t, context.Background(), srv.Endpoints()), "/rw")
	if err := r1.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- w.Lock(ctx) }()
	select {
	case err := <-wrote:
		t.Fatalf("the writer got the lock while readers hold it (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if r1.Token() == 0 || r1.Token() == r2.Token() {
		t.Fatalf("reader tokens %d and %d: each reader has its own", r1.Token(), r2.Token())
	}
	_ = r1.RUnlock(ctx)
	_ = r2.RUnlock(ctx)
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not get the lock after the readers left")
	}
	if w.Token() <= r2.Token() {
		t.Fatalf("writer token %d not above the readers' %d", w.Token(), r2.Token())
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}
