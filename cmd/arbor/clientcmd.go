package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbor-db/arbor/client"
	"github.com/arbor-db/arbor/client/wire"
)

// clientFlags are the flags of every command that talks to a cluster.
type clientFlags struct {
	endpoints   string
	json        bool
	timeout     time.Duration
	noDiscovery bool
}

// noDiscoveryHelp says what --no-discovery is for.
const noDiscoveryHelp = "use only --endpoints, not the members they name (behind a proxy or NAT that the members' own addresses do not reach)"

// addClientCommands adds the commands that talk to a cluster. Later
// commands (watch, lock, elect, member, bench) go here too.
func addClientCommands(root *cobra.Command, g *globals, e env) {
	var cf clientFlags
	group := []*cobra.Command{
		createCmd(&cf, g, e), getCmd(&cf, g, e), setCmd(&cf, g, e), deleteCmd(&cf, g, e),
		lsCmd(&cf, g, e), statCmd(&cf, g, e), membersCmd(&cf, g, e),
		watchCmd(&cf, g, e), lockCmd(&cf, g, e), electCmd(&cf, g, e), leaderCmd(&cf, g, e),
	}
	root.AddCommand(memberCmd(&cf, g, e))
	for _, cmd := range group {
		fs := cmd.Flags()
		fs.StringVar(&cf.endpoints, "endpoints", "127.0.0.1:7400", "members to try, HOST:PORT,...")
		fs.BoolVar(&cf.json, "json", false, "print the full response as one JSON object (wire field names)")
		fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "how long to wait for a reachable member with a leader, and for the answer")
		fs.BoolVar(&cf.noDiscovery, "no-discovery", false, noDiscoveryHelp)
		root.AddCommand(cmd)
	}
}

// call dials, sends one request, closes the session and prints the outcome:
// with --json the whole response, otherwise whatever human prints.
func call(ctx context.Context, cf *clientFlags, g *globals, e env, req *wire.Request, human func(*wire.Response) error) error {
	return callAfter(ctx, cf, g, e, nil, req, human)
}

// callAfter is call with before run on the session first (nil: nothing).
func callAfter(ctx context.Context, cf *clientFlags, g *globals, e env, before func(context.Context, *client.Client), req *wire.Request, human func(*wire.Response) error) error {
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, logger, err := dialCluster(ctx, cf, g, e, 0)
	if err != nil {
		return err
	}
	if before != nil {
		before(ctx, c)
	}
	resp, err := c.Do(ctx, req)
	closeSession(ctx, c, logger)
	return printOutcome(cf, e, resp, err, human)
}

// listMembers is call for the members request, after a best-effort sync on
// the same connection: members is a local read, and the member the command
// reaches may not have applied a newcomer's attributes (its client URL) that
// the cluster has committed. A sync that fails (a member cut off from its
// leader) still lists what that member knows.
func listMembers(ctx context.Context, cf *clientFlags, g *globals, e env) error {
	syncFirst := func(ctx context.Context, c *client.Client) {
		sctx, cancel := context.WithTimeout(ctx, min(cf.timeout/2, syncBeforeMembers))
		defer cancel()
		_ = c.Sync(sctx, "/")
	}
	return callAfter(ctx, cf, g, e, syncFirst, &wire.Request{Op: wire.OpMembers}, func(r *wire.Response) error {
		return printMembers(e.stdout, r.Members)
	})
}

// syncBeforeMembers bounds listMembers' sync.
const syncBeforeMembers = 2 * time.Second

// Waits between dial attempts while no member is usable, and how long that
// lasts before the command says it is waiting: a member that was just
// started takes a moment to bind its port and elect itself, and that moment
// is not worth a line on stderr.
const (
	firstRedial = 50 * time.Millisecond
	maxRedial   = time.Second
	quietWait   = 500 * time.Millisecond
)

// dialCluster opens a session on the first usable endpoint of --endpoints.
// While none is usable (no member listens yet, or none has a leader yet) it
// tries again until ctx ends (--timeout), saying once on stderr that it
// waits and why (after quietWait), so that "arbor dev & arbor create ..."
// works as typed.
// client.Dial itself fails fast: the wait is the command's, not the
// library's.
func dialCluster(ctx context.Context, cf *clientFlags, g *globals, e env, sessionTimeout time.Duration) (*client.Client, *slog.Logger, error) {
	if cf.timeout <= 0 {
		return nil, nil, usageErrorf("invalid --timeout %v: want a positive duration such as 10s", cf.timeout)
	}
	var eps []string
	for ep := range strings.SplitSeq(cf.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, nil, usageErrorf("--endpoints is empty")
	}
	// A client command says one line on failure: logs only when asked for.
	logger := slog.New(slog.DiscardHandler)
	if g.logSet {
		logger = g.logger(e.stderr)
	}
	cfg := client.Config{Endpoints: eps, Logger: logger, SessionTimeout: sessionTimeout, NoDiscovery: cf.noDiscovery}
	var prev error
	start, wait, waiting := time.Now(), firstRedial, false
	for {
		c, err := client.Dial(ctx, cfg)
		var ce *client.Error
		switch {
		case err == nil:
			return c, logger, nil
		case errors.Is(err, client.ErrBadEndpoint) && errors.As(err, &ce):
			return nil, nil, usageErrorf("invalid --endpoints: %s", ce.Message)
		case !errors.Is(err, client.ErrUnavailable):
			return nil, nil, failure(err)
		}
		if ctx.Err() != nil && prev != nil {
			// Cut short by our own deadline: the attempt before says more.
			err = prev
		}
		if !waiting && time.Since(start) >= quietWait {
			fmt.Fprintf(e.stderr, "arbor: waiting up to %v for the cluster (%s) ...\n", cf.timeout, dialWhy(err))
			waiting = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, &exitError{code: exitFail, msg: fmt.Sprintf(
				"UNAVAILABLE: %s (gave up after %v; --timeout waits longer)", dialWhy(err), cf.timeout)}
		case <-t.C:
		}
		prev, wait = err, min(2*wait, maxRedial)
	}
}

// dialWhy is the message of a Dial error: per endpoint, why it is unusable.
func dialWhy(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return err.Error()
}

// closeSession ends c's session, bounded even when ctx has ended.
func closeSession(ctx context.Context, c *client.Client, logger *slog.Logger) {
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.Close(closeCtx); err != nil {
		logger.Debug("closing the session", "err", err)
	}
}

// printOutcome prints a response: the whole of it with --json, else human.
func printOutcome(cf *clientFlags, e env, resp *wire.Response, err error, human func(*wire.Response) error) error {
	if cf.json && resp != nil {
		if jerr := json.NewEncoder(e.stdout).Encode(resp); jerr != nil {
			return failure(jerr)
		}
	}
	if err != nil {
		return failure(err)
	}
	if cf.json {
		return nil
	}
	return human(resp)
}

// failure turns an error into exit status 1 with one "CODE: message" line.
func failure(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		msg := ce.Message
		if msg == "" {
			msg = string(ce.Code)
		}
		if ce.Indeterminate {
			msg += " (the write may or may not have been applied)"
		}
		return &exitError{code: exitFail, msg: string(ce.Code) + ": " + msg}
	}
	return &exitError{code: exitFail, msg: "INTERNAL: " + err.Error()}
}

// readData returns arg as bytes, or standard input when arg is "-".
func readData(e env, arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	b, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, &exitError{code: exitFail, msg: "BAD_REQUEST: reading standard input: " + err.Error()}
	}
	return b, nil
}

func createCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var ephemeral, sequential bool
	var sessionTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "create [--ephemeral] [--sequential] PATH [DATA] [-- COMMAND [ARG...]]",
		Short: "Create a node and print its path",
		Long: `Create a node with DATA (empty when absent; "-" reads standard input) and
print the created path (which differs from PATH with --sequential).

An --ephemeral node lives as long as this command's session: arbor keeps the
session, and so the node, until it is interrupted (SIGINT or SIGTERM), then
closes the session and exits 0. With -- COMMAND it runs COMMAND meanwhile
(ARBOR_NODE holds the created path, ARBOR_SESSION the session id) and holds
the node while COMMAND runs; when COMMAND exits, the session is closed and
arbor exits with COMMAND's status. This is how a shell script registers
itself, for service discovery:

  arbor create --ephemeral --sequential /services/web/instance- "$ADDR" -- ./serve

If the session is lost (the cluster expired it, or arbor could not reach the
cluster for so long that it may have), COMMAND gets SIGTERM, then SIGKILL 10s
later, and arbor exits 1 naming why.`,
		Args: func(cmd *cobra.Command, args []string) error {
			n := len(args)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				n = dash
				if dash == len(args) {
					return usageErrorf("-- must be followed by a command to run")
				}
			}
			if n < 1 || n > 2 {
				return usageErrorf("create takes PATH and optionally DATA (got %d arguments before any --)", n)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var argv []string
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				args, argv = args[:dash], args[dash:]
			}
			if len(argv) > 0 && !ephemeral {
				return usageErrorf("-- COMMAND holds an ephemeral node while COMMAND runs: it needs --ephemeral")
			}
			req := &wire.Request{Op: wire.OpCreate, Path: args[0], Ephemeral: ephemeral, Sequential: sequential}
			if len(args) == 2 {
				data, err := readData(e, args[1])
				if err != nil {
					return err
				}
				req.Data = data
			}
			printPath := func(r *wire.Response) error {
				_, err := fmt.Fprintln(e.stdout, r.Path)
				return err
			}
			if !ephemeral {
				return call(cmd.Context(), cf, g, e, req, printPath)
			}
			return createAndHold(cmd.Context(), cf, g, e, req, sessionTimeout, argv, printPath)
		},
	}
	cmd.Flags().BoolVar(&ephemeral, "ephemeral", false, "hold the node for as long as this command runs (see above)")
	cmd.Flags().BoolVar(&sequential, "sequential", false, "append a 10-digit sequence number to the name")
	cmd.Flags().DurationVar(&sessionTimeout, "session-timeout", client.DefaultSessionTimeout, "with --ephemeral: how long the cluster keeps the node after this command can no longer be heard from")
	return cmd
}

// createAndHold creates an ephemeral node and holds it (see hold).
func createAndHold(ctx context.Context, cf *clientFlags, g *globals, e env, req *wire.Request,
	sessionTimeout time.Duration, argv []string, printPath func(*wire.Response) error) error {
	dctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, logger, err := dialCluster(dctx, cf, g, e, sessionTimeout)
	if err != nil {
		return err
	}
	defer closeSession(ctx, c, logger)
	resp, err := c.Do(dctx, req)
	if err := printOutcome(cf, e, resp, err, printPath); err != nil || resp == nil {
		return err
	}
	env := []string{"ARBOR_NODE=" + resp.Path, "ARBOR_SESSION=" + c.Session()}
	return hold(ctx, c.Context(), e, argv, env, "the ephemeral node "+resp.Path)
}

func getCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "get PATH [--watch]",
		Short: "Print a node's data, raw",
		Long: `Print a node's data exactly as stored, byte for byte, when standard output
is a pipe or a file. On a terminal a newline is added after data that does
not end with one, so that the prompt starts on a line of its own.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if watch {
				return getWatch(cmd.Context(), cf, g, e, args[0])
			}
			return call(cmd.Context(), cf, g, e, &wire.Request{Op: wire.OpGet, Path: args[0]}, func(r *wire.Response) error {
				data := r.Data
				if e.stdoutTTY && len(data) > 0 && data[len(data)-1] != '\n' {
					data = append(data, '\n')
				}
				_, err := e.stdout.Write(data)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "then wait for the node's next change, print it (see arbor watch) and exit")
	return cmd
}

func setCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "set PATH DATA [--version N]",
		Short: `Replace a node's data ("-" reads standard input)`,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readData(e, args[1])
			if err != nil {
				return err
			}
			req := &wire.Request{Op: wire.OpSet, Path: args[0], Data: data, Version: &version}
			return call(cmd.Context(), cf, g, e, req, func(*wire.Response) error { return nil })
		},
	}
	cmd.Flags().Int64Var(&version, "version", -1, "only if the node is at this version (-1: any)")
	return cmd
}

func deleteCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var version int64
	var recursive bool
	cmd := &cobra.Command{
		Use:   "delete PATH [--version N] [--recursive]",
		Short: "Delete a node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &wire.Request{Op: wire.OpDelete, Path: args[0], Version: &version, Recursive: recursive}
			return call(cmd.Context(), cf, g, e, req, func(*wire.Response) error { return nil })
		},
	}
	cmd.Flags().Int64Var(&version, "version", -1, "only if the node is at this version (-1: any)")
	cmd.Flags().BoolVar(&recursive, "recursive", false, "delete everything below the node too")
	return cmd
}

// reservedRoot is the child of / that the server keeps for itself.
const reservedRoot = "arbor"

func lsCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ls PATH [--all]",
		Short: "List a node's children, one name a line",
		Long: `List a node's children, one name a line, sorted. ls / leaves out the
server's own read-only /arbor unless --all is given; --json prints the
response as the server sent it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), cf, g, e, &wire.Request{Op: wire.OpChildren, Path: args[0]}, func(r *wire.Response) error {
				for _, name := range r.Children {
					if args[0] == "/" && name == reservedRoot && !all {
						continue
					}
					if _, err := fmt.Fprintln(e.stdout, name); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "in /, list the reserved /arbor too")
	return cmd
}

func statCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	return &cobra.Command{
		Use:   "stat PATH",
		Short: "Print a node's stat, one field a line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), cf, g, e, &wire.Request{Op: wire.OpGet, Path: args[0]}, func(r *wire.Response) error {
				return printStat(e.stdout, r.Stat.Stat)
			})
		},
	}
}

func membersCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the members of the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listMembers(cmd.Context(), cf, g, e)
		},
	}
}
