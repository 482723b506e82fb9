package recipe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/arbor-db/arbor/client"
)

// Queue is a distributed FIFO queue (ZooKeeper's queue recipe): each item
// is a persistent sequential child of path, so it outlives the session
// that put it, and every item is taken by exactly one consumer. A Queue is
// safe for concurrent use, and any number of Clients may put and take at
// the same path.
//
// Take is at most once: it deletes the item before returning it, so an
// item taken by a consumer that then crashes before it has done the work
// is lost. (Processing before deleting would be at least once instead, and
// a crash between the two would hand the item to another consumer again.)
// When losing an item is not acceptable, make the work idempotent and keep
// the item elsewhere until it is done, or record completion in the
// resource itself.
//
// Items are taken in the order they were put, as the cluster ordered the
// puts; with several consumers each sees its own items in that order, but
// the work they do may of course finish in any order.
type Queue struct {
	c    *client.Client
	path string
}

// itemPrefix starts every item's name; the sequence number follows.
// Children of path without it are not items and are left alone.
const itemPrefix = "item-"

// NewQueue returns the queue at path. It does no I/O: a bad path is
// reported by the first call.
func NewQueue(c *client.Client, path string) *Queue {
	return &Queue{c: c, path: path}
}

// Put appends data to the queue and returns the item's node, creating
// path and its missing parents as persistent nodes. If Put fails with an
// indeterminate error (client.IsIndeterminate), the item may or may not
// have been queued: a Put that is simply retried may queue it twice.
func (q *Queue) Put(ctx context.Context, data []byte) (string, error) {
	if err := checkRecipe(q.c, q.path); err != nil {
		return "", fmt.Errorf("recipe: queue: %w", err)
	}
	name, _, err := q.c.Create(ctx, q.path+"/"+itemPrefix, data, client.Sequential())
	if errors.Is(err, client.ErrNoNode) {
		if err = createPath(ctx, q.c, q.path); err == nil {
			name, _, err = q.c.Create(ctx, q.path+"/"+itemPrefix, data, client.Sequential())
		}
	}
	if err != nil {
		return "", fmt.Errorf("recipe: queue %s: put: %w", q.path, err)
	}
	return name, nil
}

// Take removes the oldest item and returns its data, waiting for one while
// the queue is empty (or does not exist yet), until ctx ends. Consumers
// racing for an item each try to delete it and only one succeeds; the
// others move on to the next.
//
// If the delete's outcome is unknown (the connection broke, or ctx ended
// while it was in flight), Take returns that error, for which
// client.IsIndeterminate holds: the item may have been deleted, by this
// call (and so is lost) or by another consumer, or still be queued.
func (q *Queue) Take(ctx context.Context) ([]byte, error) {
	if err := checkRecipe(q.c, q.path); err != nil {
		return nil, fmt.Errorf("recipe: queue: %w", err)
	}
	data, err := q.take(ctx)
	if err != nil {
		return nil, fmt.Errorf("recipe: queue %s: take: %w", q.path, err)
	}
	return data, nil
}

func (q *Queue) take(ctx context.Context) ([]byte, error) {
	// Look without a watch while there is work: a watch set on every look
	// would pile up on the member for a busy queue. Only a look that
	// follows an empty one sets one, so an item put in between is not
	// missed.
	watch := false
	for {
		var changed <-chan client.WatchEvent
		var opts []client.ReadOption
		if watch {
			opts = append(opts, client.WatchOnce(&changed))
		}
		kids, _, err := q.c.Children(ctx, q.path, opts...)
		switch {
		case errors.Is(err, client.ErrNoNode):
			kids = nil
			if watch {
				// No queue yet: wait for it to be created instead.
				st, err := q.c.Exists(ctx, q.path, client.WatchOnce(&changed))
				if err != nil {
					return nil, err
				}
				if st != nil {
					continue
				}
			}
		case err != nil:
			return nil, err
		}
		items := items(kids)
		for _, item := range items {
			data, ok, err := q.claim(ctx, q.path+"/"+item)
			if err != nil {
				return nil, err
			}
			if ok {
				return data, nil
			}
		}
		switch {
		case len(items) > 0:
			watch = false // all went to others: there may be more
			continue
		case !watch:
			watch = true
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// claim reads item and deletes it at the version it read, so that the
// data returned is the data deleted. ok is false when another consumer
// got there first (or the item changed: it is looked at again next time).
func (q *Queue) claim(ctx context.Context, item string) (data []byte, ok bool, err error) {
	data, st, err := q.c.Get(ctx, item)
	if errors.Is(err, client.ErrNoNode) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	err = q.c.Delete(ctx, item, st.Version)
	switch {
	case err == nil:
		return data, true, nil
	case errors.Is(err, client.ErrNoNode), errors.Is(err, client.ErrBadVersion):
		return nil, false, nil
	case errors.Is(err, client.ErrNotEmpty):
		// Skipping it would spin on it for ever.
		return nil, false, fmt.Errorf("item %s has children: the queue holds a node this recipe did not put: %w", item, err)
	}
	return nil, false, err
}

// items returns the names of the items among kids, oldest first (the
// cluster lists children sorted, and the sequence numbers are padded).
func items(kids []string) []string {
	var out []string
	for _, k := range kids {
		if strings.HasPrefix(k, itemPrefix) {
			out = append(out, k)
		}
	}
	return out
}
