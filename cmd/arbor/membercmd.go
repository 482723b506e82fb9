package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbor-db/arbor/client/wire"
	"github.com/arbor-db/arbor/server"
)

// memberCmd is "arbor member list | add NAME PEERHOST:PORT [--learner] |
// promote NAME | remove NAME". With gossip, members join by themselves
// (arbor server --join); these are for an operator.
func memberCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	parent := &cobra.Command{
		Use:   "member list | add NAME PEERHOST:PORT [--learner] | promote NAME | remove NAME",
		Short: "List and change the members of the cluster",
		Long: `List the members (as "arbor members"), or change them by hand: add a member
(then start it with an empty --data-dir and --join), promote a learner to voter,
or remove a member (a removed member stops; its name cannot be used again in
this build). With gossip, "arbor server --join" adds and promotes members by
itself; nothing is ever removed automatically.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("member needs a subcommand: list, add, promote or remove")
		},
	}
	var learner bool
	list := &cobra.Command{
		Use: "list", Short: "List the members (as arbor members)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listMembers(cmd.Context(), cf, g, e)
		},
	}
	add := &cobra.Command{
		Use: "add NAME PEERHOST:PORT [--learner]", Short: "Add a member (as a learner with --learner)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkHostPort(args[1], true); err != nil {
				return usageErrorf("invalid PEERHOST:PORT %q: %v", args[1], err)
			}
			return changeMember(cmd.Context(), cf, e, server.MemberChange{Op: "add", Name: args[0], PeerURL: args[1], Learner: learner})
		},
	}
	add.Flags().BoolVar(&learner, "learner", false, "add it as a non-voting member")
	promote := &cobra.Command{
		Use: "promote NAME", Short: "Make a learner a voter", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return changeMember(cmd.Context(), cf, e, server.MemberChange{Op: "promote", Name: args[0]})
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove a member (it stops)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return changeMember(cmd.Context(), cf, e, server.MemberChange{Op: "remove", Name: args[0]})
		},
	}
	for _, sub := range []*cobra.Command{list, add, promote, remove} {
		fs := sub.Flags()
		fs.StringVar(&cf.endpoints, "endpoints", "127.0.0.1:7400", "members to try, HOST:PORT,...")
		fs.BoolVar(&cf.json, "json", false, "print the full response as one JSON object (wire field names)")
		fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "how long to wait for a reachable member, and for the change")
		parent.AddCommand(sub)
	}
	return parent
}

// changeMember posts mc to the first endpoint that answers.
func changeMember(ctx context.Context, cf *clientFlags, e env, mc server.MemberChange) error {
	if cf.timeout <= 0 {
		return usageErrorf("invalid --timeout %v: want a positive duration such as 10s", cf.timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	body, _ := json.Marshal(mc)
	var lastErr error
	for ep := range strings.SplitSeq(cf.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep+server.AdminMembersPath, bytes.NewReader(body))
		if err != nil {
			return usageErrorf("invalid --endpoints %q: %v", ep, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			continue // try the next member
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if cf.json {
				_, err := e.stdout.Write(b)
				return err
			}
			return nil
		}
		var werr wire.Error
		if json.Unmarshal(b, &werr) != nil || werr.Code == "" {
			return &exitError{code: exitFail, msg: fmt.Sprintf("INTERNAL: %s answered %s: %s", ep, resp.Status, strings.TrimSpace(string(b)))}
		}
		return &exitError{code: exitFail, msg: string(werr.Code) + ": " + werr.Message}
	}
	why := "no endpoint"
	if lastErr != nil {
		why = lastErr.Error()
		if errors.Is(lastErr, context.DeadlineExceeded) {
			why = "timed out"
		}
	}
	return &exitError{code: exitFail, msg: "UNAVAILABLE: no member took the change: " + why}
}
