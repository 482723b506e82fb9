package lincheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/arbor-db/arbor/client"
)

// Errors. Every violation a checker reports wraps ErrViolation.
var (
	ErrViolation = errors.New("lincheck: violation")
	// ErrStateDiverged: two members report different state hashes at the
	// same applied index (wraps ErrViolation).
	ErrStateDiverged = fmt.Errorf("%w: state hashes differ at the same applied index", ErrViolation)
	// ErrNotConverged: members did not reach the same applied index in time.
	ErrNotConverged = errors.New("lincheck: members did not converge on one applied index")
)

// byClient groups h per connection, in call (request) order.
func byClient(h []Op) map[int][]Op {
	m := map[int][]Op{}
	for _, o := range h {
		m[o.Client] = append(m[o.Client], o)
	}
	for _, ops := range m {
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	}
	return m
}

// CheckLocalReadsMonotonic reports every `local` read whose zxid is below
// the greatest zxid an earlier operation of the same connection (in request
// order; the protocol answers a connection in order) already returned. Only
// successful operations carry zxids; Unknown ones count for nothing.
func CheckLocalReadsMonotonic(h []Op) []error {
	var errs []error
	for c, ops := range byClient(h) {
		var seen uint64
		var from Op
		for _, o := range ops {
			if o.Output.Unknown || o.Output.Err != "" || o.Output.Zxid == 0 {
				continue
			}
			if o.Input.Kind == KindGet && o.Input.Local && o.Output.Zxid < seen {
				errs = append(errs, fmt.Errorf("%w: connection %d: local read went back to zxid %d after %d: %v after %v",
					ErrViolation, c, o.Output.Zxid, seen, o, from))
			}
			if o.Output.Zxid > seen {
				seen, from = o.Output.Zxid, o
			}
		}
	}
	return errs
}

// CheckEphemerals reports every linearizable read that began after a
// session's close was acknowledged and still saw a node owned by that
// session, and every ephemeral create of a closed session that succeeded
// after the close (the close deletes a session's ephemerals in the same
// command that ends it).
func CheckEphemerals(h []Op) []error {
	closedAt := map[string]Op{}
	for _, o := range h {
		if o.Input.Kind == KindClose && !o.Output.Unknown && o.Output.Err == "" && o.Input.Session != "" {
			closedAt[o.Input.Session] = o
		}
	}
	var errs []error
	for _, o := range h {
		if o.Output.Unknown || o.Output.Err != "" {
			continue
		}
		switch {
		case o.Input.Kind == KindGet && !o.Input.Local && o.Output.Owner != "":
			if c, ok := closedAt[o.Output.Owner]; ok && o.Call > c.Return {
				errs = append(errs, fmt.Errorf("%w: %v saw an ephemeral of session %s after its close %v was acknowledged",
					ErrViolation, o, o.Output.Owner, c))
			}
		case o.Input.Kind == KindCreate && o.Input.Ephemeral:
			if c, ok := closedAt[o.Input.Session]; ok && o.Call > c.Return {
				errs = append(errs, fmt.Errorf("%w: %v created an ephemeral after its session's close %v", ErrViolation, o, c))
			}
		}
	}
	return errs
}

// LeftoverEphemerals lists the children of each parent through c (with
// linearizable reads) and reports every node owned by a session whose close
// h records as acknowledged: run it once the workload is over.
func LeftoverEphemerals(ctx context.Context, c *client.Client, h []Op, parents ...string) ([]error, error) {
	closed := map[string]bool{}
	for _, o := range h {
		if o.Input.Kind == KindClose && !o.Output.Unknown && o.Output.Err == "" {
			closed[o.Input.Session] = true
		}
	}
	var errs []error
	for _, parent := range parents {
		kids, _, err := c.Children(ctx, parent)
		if errors.Is(err, client.ErrNoNode) {
			continue
		}
		if err != nil {
			return errs, fmt.Errorf("lincheck: list %s: %w", parent, err)
		}
		for _, k := range kids {
			p := strings.TrimSuffix(parent, "/") + "/" + k
			st, err := c.Exists(ctx, p)
			if err != nil {
				return errs, fmt.Errorf("lincheck: stat %s: %w", p, err)
			}
			if st != nil && closed[st.EphemeralOwner] {
				errs = append(errs, fmt.Errorf("%w: ephemeral %s of closed session %s remains", ErrViolation, p, st.EphemeralOwner))
			}
		}
	}
	return errs, nil
}
