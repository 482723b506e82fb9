package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

var quietLog = slog.New(slog.DiscardHandler)

// join starts a new member, name, on an empty data dir with --join at the
// running members' gossip addresses, and returns its index. It waits only
// until the member has bound its ports: it is ready once the leader has
// added it.
func (c *cluster) join(name string, extra ...string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	i, err := c.Add(ctx, name, "127.0.0.1", extra...)
	if err != nil {
		c.t.Fatal(err)
	}
	return i
}

// roles asks member i for the members op and renders it as
// "name:role:alive ..." sorted by name.
func (c *cluster) roles(ctx context.Context, i int) (string, error) {
	ms, err := c.MembersOf(ctx, i)
	if err != nil {
		return "", err
	}
	return renderRoles(ms), nil
}

func renderRoles(ms []wire.Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s:%s:%t", m.Name, m.Role, m.Alive))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// waitRoles polls every running member until each answers the members op
// with exactly want, and returns how long that took.
func (c *cluster) waitRoles(want string, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	got := map[string]string{}
	for deadline := start.Add(within); ; time.Sleep(100 * time.Millisecond) {
		same := true
		for i, m := range c.Members {
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := c.roles(ctx, i)
			cancel()
			if err != nil {
				r = "error: " + err.Error()
			}
			got[m.Name] = r
			same = same && r == want
		}
		if same {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members after %v: want %q on every running member, got %v", within, want, got)
		}
	}
}

// cli runs the arbor binary with args and returns its stdout, stderr and
// exit error.
func cli(ctx context.Context, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// waitExit waits for member i to exit on its own and returns how it
// exited; still running after within fails the test.
func (c *cluster) waitExit(i int, within time.Duration) error {
	c.t.Helper()
	m := c.Members[i]
	err := m.Wait(within)
	if m.Running() {
		c.t.Fatalf("%s still running %v after its removal", m.Name, within)
	}
	return err
}

func (c *cluster) logOf(i int) string { return c.Members[i].Log() }

// writer creates /grow/PREFIXNNNNNN nodes one after the other until stopped,
// keeping the acknowledged paths. A create whose outcome is unknown (the
// connection broke) is retried on the same path: ErrNodeExists then means
// the first attempt was applied. Every other error is kept as a failure.
type writer struct {
	cl     *client.Client
	prefix string
	stop   context.CancelFunc
	done   chan struct{}

	mu            sync.Mutex
	acked         []string
	indeterminate int     // creates retried after an unknown outcome
	resolved      int     // of those, found applied by the retry
	failures      []error // errors that were not a retried disconnect
}

func startWriter(t *testing.T, prefix string, eps ...string) *writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Endpoints: eps, SessionTimeout: 10 * time.Second,
		Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.Create(ctx, "/grow", nil); err != nil && !errors.Is(err, client.ErrNodeExists) {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	w := &writer{cl: cl, prefix: prefix, stop: stop, done: make(chan struct{})}
	go w.run(wctx)
	return w
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	for i := 0; ctx.Err() == nil; i++ {
		p := fmt.Sprintf("/grow/%s%06d", w.prefix, i)
		retried := false
		for ctx.Err() == nil {
			octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _, err := w.cl.Create(octx, p, []byte(p))
			cancel()
			w.mu.Lock()
			switch {
			case err == nil:
				w.acked = append(w.acked, p)
			case retried && errors.Is(err, client.ErrNodeExists):
				w.acked = append(w.acked, p)
				w.resolved++
			case client.IsIndeterminate(err):
				w.indeterminate++
				retried = true
				w.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				continue
			default:
				w.failures = append(w.failures, fmt.Errorf("create %s: %w", p, err))
			}
			w.mu.Unlock()
			break
		}
	}
}

// count returns how many creates have been acknowledged so far.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitMore waits until n more creates than now are acknowledged.
func (w *writer) waitMore(t *testing.T, n int, within time.Duration) {
	t.Helper()
	want := w.count() + n
	for deadline := time.Now().Add(within); w.count() < want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer acknowledged %d creates, want %d within %v: failures %v", w.count(), want, within, w.failures)
		}
	}
}

// finish stops the writer and closes its client.
func (w *writer) finish() {
	w.stop()
	<-w.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.cl.Close(ctx)
}

// checkAcked checks that every acknowledged path is in member i's own
// state (a local read through a client kept to it), once the member has
// applied the leader's commit index.
func (c *cluster) checkAcked(t *testing.T, i int, acked []string) {
	t.Helper()
	m := c.Members[i]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WaitSettled(ctx, i, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(ctx, client.Config{Endpoints: []string{m.ClientAddr}, NoDiscovery: true,
		Logger: quietLog})
	if err != nil {
		t.Fatalf("dial %s: %v", m.Name, err)
	}
	defer cl.Close(ctx)
	kids, _, err := cl.Children(ctx, "/grow", client.Local())
	if err != nil {
		t.Fatalf("children of /grow on %s: %v", m.Name, err)
	}
	slices.Sort(kids)
	var missing []string
	for _, p := range acked {
		if _, ok := slices.BinarySearch(kids, strings.TrimPrefix(p, "/grow/")); !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged creates missing on %s, first %v", len(missing), len(acked), m.Name, missing[:min(5, len(missing))])
	}
}
