package proc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

// ErrNoLeader is returned when no running member is named leader by a
// majority of the voters.
var ErrNoLeader = errors.New("proc: no leader agreed by a majority")

// quiet drops the log of the harness's own clients.
var quiet = slog.New(slog.DiscardHandler)

// pollEvery is how often the waits ask again.
const pollEvery = 50 * time.Millisecond

// askTimeout bounds one question to one member.
const askTimeout = 2 * time.Second

var httpClient = &http.Client{Timeout: askTimeout, Transport: &http.Transport{DisableKeepAlives: true}}

// WaitReady waits up to within for member i's /readyz to answer 200. A
// member that exits because one of its addresses is taken is started again
// on the same addresses until then; one that exits otherwise is an error.
func (c *Cluster) WaitReady(ctx context.Context, i int, within time.Duration) error {
	return c.waitReady(ctx, i, within, true)
}

func (c *Cluster) waitReady(ctx context.Context, i int, within time.Duration, restart bool) error {
	m := c.Members[i]
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		code, err := get(ctx, "http://"+m.ClientAddr+"/readyz", nil)
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("/readyz answered %d", code)
		}
		if !m.Running() {
			inUse := m.portInUse()
			if !inUse || !restart {
				err := fmt.Errorf("proc: %s exited while waiting for it to be ready: %v; log tail:\n%s", m.Name, m.Err(), m.Tail(20))
				if inUse {
					err = fmt.Errorf("%w: %w", ErrPortInUse, err)
				}
				return err
			}
			c.log.Warn("an address of the member was taken; starting it again", "member", m.Name)
			if err := c.Start(i); err != nil {
				return err
			}
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return fmt.Errorf("proc: %s not ready within %v: %v", m.Name, within, last)
		}
	}
}

// awaitBound waits until a just started member answers on its client
// address at all, which it does once it has bound its addresses.
func (c *Cluster) awaitBound(ctx context.Context, m *Member, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		if _, err := get(ctx, "http://"+m.ClientAddr+"/healthz", nil); err == nil {
			return nil
		}
		if !m.Running() {
			err := fmt.Errorf("proc: %s exited at start: %v; log tail:\n%s", m.Name, m.Err(), m.Tail(20))
			if m.portInUse() {
				err = fmt.Errorf("%w: %w", ErrPortInUse, err)
			}
			return err
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return fmt.Errorf("proc: %s does not answer on %s within %v", m.Name, m.ClientAddr, within)
		}
	}
}

// sleep waits d, or returns ctx's error if it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// get fetches url and decodes a JSON body into out (when not nil),
// returning the status code.
func get(ctx context.Context, url string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w", url, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the status is all that is left unread
	return resp.StatusCode, nil
}

// Dial opens a session through member i only.
func (c *Cluster) Dial(ctx context.Context, i int) (*client.Client, error) {
	return client.Dial(ctx, client.Config{
		Endpoints: []string{c.Members[i].ClientAddr}, DialTimeout: time.Second,
		Logger: quiet, NoDiscovery: true,
	})
}

// MembersOf asks member i for the members op.
func (c *Cluster) MembersOf(ctx context.Context, i int) ([]wire.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	cl, err := c.Dial(ctx, i)
	if err != nil {
		return nil, err
	}
	defer cl.Close(ctx)
	return cl.Members(ctx)
}

// Leader asks every running, unpaused member who leads, and returns the
// index of the running, unpaused member that a majority of the voters (as
// the members that answered count them) name.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	var views [][]wire.Member
	for i, m := range c.Members {
		if !m.Running() || m.Paused() {
			continue
		}
		if ms, err := c.MembersOf(ctx, i); err == nil {
			views = append(views, ms)
		}
	}
	name, err := majorityLeader(views)
	if err != nil {
		return -1, err
	}
	l := c.Index(name)
	if l < 0 || !c.Members[l].Running() || c.Members[l].Paused() {
		return -1, fmt.Errorf("%w: %s, named by a majority, is not a running member here", ErrNoLeader, name)
	}
	return l, nil
}

// majorityLeader returns the name that more than half of the voters name
// as leader, given the members op answers of some members. The number of
// voters is the largest any answer counts.
func majorityLeader(views [][]wire.Member) (string, error) {
	votes := map[string]int{}
	voters := 0
	for _, ms := range views {
		n := 0
		for _, m := range ms {
			switch m.Role {
			case wire.RoleLeader:
				votes[m.Name]++
				n++
			case wire.RoleFollower:
				n++
			}
		}
		voters = max(voters, n)
	}
	for name, n := range votes {
		if n > voters/2 {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: %d answers, %d voters, votes %v", ErrNoLeader, len(views), voters, votes)
}

// WaitLeader polls Leader for up to within.
func (c *Cluster) WaitLeader(ctx context.Context, within time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		l, err := c.Leader(ctx)
		if err == nil {
			return l, nil
		}
		if serr := sleep(ctx, pollEvery); serr != nil {
			return -1, fmt.Errorf("proc: no leader within %v: %w", within, err)
		}
	}
}

// State is what GET /debug/state reports of a member.
type State struct {
	Member         string `json:"member"`
	Applied        uint64 `json:"applied"`
	Hash           string `json:"state_sha256"`
	Nodes          int    `json:"nodes"`
	Sessions       int    `json:"sessions"`
	ClusterVersion uint64 `json:"cluster_version"`
	Commit         uint64 `json:"commit"` // the commit index the member knows
	Leader         bool   `json:"leader"` // whether it knows a leader
}

// State fetches member i's /debug/state.
func (c *Cluster) State(ctx context.Context, i int) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	var st State
	code, err := get(ctx, "http://"+c.Members[i].ClientAddr+"/debug/state", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("/debug/state answered %d", code)
	}
	if err != nil {
		return State{}, fmt.Errorf("proc: state of %s: %w", c.Members[i].Name, err)
	}
	return st, nil
}

// WaitSettled waits up to within until member i knows a leader and has
// applied the highest commit index a running member reports when asked
// (the leader's: no follower's is higher), and returns i's state then. It
// reads /debug/state only, so it changes nothing (a session would).
func (c *Cluster) WaitSettled(ctx context.Context, i int, within time.Duration) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var commit uint64
	var errs []error
	for j, m := range c.Members {
		if !m.Running() || m.Paused() {
			continue
		}
		st, err := c.State(ctx, j)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		commit = max(commit, st.Commit)
	}
	if commit == 0 {
		return State{}, fmt.Errorf("proc: no running member reports a commit index: %w", errors.Join(errs...))
	}
	return c.WaitApplied(ctx, i, commit, within)
}

// WaitApplied waits up to within until member i knows a leader and has
// applied index, and returns its state then.
func (c *Cluster) WaitApplied(ctx context.Context, i int, index uint64, within time.Duration) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last State
	for {
		st, err := c.State(ctx, i)
		if err == nil && st.Leader && st.Applied >= index {
			return st, nil
		}
		if err == nil {
			last = st
		}
		if serr := sleep(ctx, pollEvery); serr != nil {
			return last, fmt.Errorf("proc: %s has not applied index %d within %v: applied %d, knows a leader %v (last error %v)",
				c.Members[i].Name, index, within, last.Applied, last.Leader, err)
		}
	}
}
