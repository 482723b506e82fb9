package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/arbor-db/arbor/client"
)

// watchCmd is "arbor watch PATH [--recursive] [--since ZXID] [--json]": one
// line per event until interrupted. The client registers the watch again
// on another member when its member goes, since the last event it printed,
// so the stream has no gap and no duplicate.
func watchCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var recursive bool
	var since uint64
	cmd := &cobra.Command{
		Use:   "watch PATH [--recursive] [--since ZXID]",
		Short: "Print every change of a node (or its subtree) until interrupted",
		Long: "Prints one line per event: TYPE PATH ZXID DATA (data quoted, on created and data events).\n" +
			"A resync (--since older than the member's history) prints \"resync PATH ZXID\" and then\n" +
			"\"node PATH MZXID DATA\" for each node as it stands. --timeout bounds connecting and\n" +
			"registering the watch, not the watch itself.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dctx, cancel := context.WithTimeout(ctx, cf.timeout)
			defer cancel()
			c, logger, err := dialCluster(dctx, cf, g, e, 0)
			if err != nil {
				return err
			}
			defer closeSession(ctx, c, logger)
			opts := []client.WatchOption{client.Since(since)}
			if recursive {
				opts = append(opts, client.Recursive())
			}
			w, err := c.Watch(dctx, args[0], opts...)
			if err != nil {
				return failure(err)
			}
			for {
				select {
				case ev, ok := <-w.Events():
					if !ok {
						return failure(w.Err())
					}
					if err := printWatchEvent(e.stdout, cf.json, ev); err != nil {
						return failure(err)
					}
				case <-ctx.Done():
					return nil // interrupted: the normal end
				}
			}
		},
	}
	cmd.Flags().BoolVar(&recursive, "recursive", false, "watch the whole subtree")
	cmd.Flags().Uint64Var(&since, "since", 0, "first replay every change after this zxid")
	return cmd
}

// getWatch is "arbor get --watch PATH": print the data, wait for the next
// change of the node, print it and exit. If the connection breaks first,
// the watch is set again with a fresh read, and a change in between is
// reported from what that read shows.
func getWatch(ctx context.Context, cf *clientFlags, g *globals, e env, path string) error {
	dctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, logger, err := dialCluster(dctx, cf, g, e, 0)
	if err != nil {
		return err
	}
	defer closeSession(ctx, c, logger)
	var once <-chan client.WatchEvent
	data, st, err := c.Get(dctx, path, client.WatchOnce(&once))
	if err != nil {
		return failure(err)
	}
	if cf.json {
		err = json.NewEncoder(e.stdout).Encode(map[string]any{"path": path, "data": data, "stat": st})
	} else {
		_, err = fmt.Fprintf(e.stdout, "%s\n", data)
	}
	if err != nil {
		return failure(err)
	}
	for {
		var ev client.WatchEvent
		select {
		case ev = <-once:
		case <-ctx.Done():
			return nil
		}
		if !errors.Is(ev.Err, client.ErrWatchLost) {
			if ev.Err != nil {
				return failure(ev.Err)
			}
			return printWatchEvent(e.stdout, cf.json, ev)
		}
		// Set it again, and report a change the new read shows.
		var again <-chan client.WatchEvent
		_, now, err := c.Get(ctx, path, client.WatchOnce(&again))
		switch {
		case errors.Is(err, client.ErrNoNode):
			return printWatchEvent(e.stdout, cf.json, client.WatchEvent{Type: client.EventDeleted, Path: path, Zxid: c.LastZxid()})
		case err != nil:
			return failure(err)
		case now.Czxid != st.Czxid:
			return printWatchEvent(e.stdout, cf.json, client.WatchEvent{Type: client.EventDeleted, Path: path, Zxid: now.Czxid})
		case now.Mzxid != st.Mzxid:
			return printWatchEvent(e.stdout, cf.json, client.WatchEvent{Type: client.EventData, Path: path, Zxid: now.Mzxid})
		}
		once = again
	}
}

// printWatchEvent prints one event as a line (or one JSON object).
func printWatchEvent(w io.Writer, asJSON bool, ev client.WatchEvent) error {
	if asJSON {
		type node struct {
			Path  string `json:"path"`
			Data  []byte `json:"data,omitempty"`
			Mzxid uint64 `json:"mzxid"`
		}
		out := struct {
			Type  string `json:"type"`
			Path  string `json:"path"`
			Zxid  uint64 `json:"zxid"`
			Data  []byte `json:"data,omitempty"`
			Nodes []node `json:"nodes,omitempty"`
		}{Type: ev.Type.String(), Path: ev.Path, Zxid: ev.Zxid, Data: ev.Data}
		for _, n := range ev.Nodes {
			out.Nodes = append(out.Nodes, node{Path: n.Path, Data: n.Data, Mzxid: n.Stat.Mzxid})
		}
		return json.NewEncoder(w).Encode(out)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %d", ev.Type, ev.Path, ev.Zxid)
	if ev.Type == client.EventCreated || ev.Type == client.EventData {
		if ev.Data != nil {
			fmt.Fprintf(&b, " %q", ev.Data)
		}
	}
	b.WriteByte('\n')
	for _, n := range ev.Nodes {
		fmt.Fprintf(&b, "node %s %d %q\n", n.Path, n.Stat.Mzxid, n.Data)
	}
	_, err := w.Write(b.Bytes())
	return err
}
