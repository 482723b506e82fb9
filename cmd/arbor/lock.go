package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbor-db/arbor/client"
)

// holdArgs splits "PATH ... -- COMMAND ARG..." and checks the count before
// the dash.
func holdArgs(name string, before int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(args)
		if dash := cmd.ArgsLenAtDash(); dash >= 0 {
			n = dash
			if dash == len(args) {
				return usageErrorf("-- must be followed by a command to run")
			}
		}
		if n != before {
			return usageErrorf("%s takes %d argument(s) before any -- (got %d)", name, before, n)
		}
		return nil
	}
}

func splitDash(cmd *cobra.Command, args []string) (before, argv []string) {
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		return args[:dash], args[dash:]
	}
	return args, nil
}

// lockCmd is "arbor lock PATH [--shared] [--wait D] [-- COMMAND ARG...]".
func lockCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var shared bool
	var wait, sessionTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "lock PATH [--shared] [--wait DURATION] [-- COMMAND [ARG...]]",
		Short: "Hold a lock while a command runs",
		Long: `Take the lock at PATH (exclusive, or shared with other readers with --shared),
then run COMMAND with the lock's fencing token in ARBOR_LOCK_TOKEN (and its node
in ARBOR_LOCK_NODE), release the lock when COMMAND exits and exit with its
status. Without COMMAND, print the token and hold the lock until interrupted.

Hand the token to whatever the lock guards, and have it refuse a token lower
than the highest it has seen: a holder that lost the lock without knowing it
(paused, partitioned) then cannot overwrite its successor's work.

  arbor lock /jobs/nightly -- ./run-nightly.sh

--wait bounds the wait for the lock (0 tries once); without it arbor waits
until the lock is granted. If the lock is lost (the session expired, or arbor
could not reach the cluster for so long that it may have), COMMAND gets
SIGTERM, then SIGKILL 10s later, and arbor exits 1 naming why.`,
		Args: holdArgs("lock", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, argv := splitDash(cmd, args)
			var opts []client.LockOption
			if shared {
				opts = append(opts, client.Shared())
			}
			if cmd.Flags().Changed("wait") {
				if wait < 0 {
					return usageErrorf("invalid --wait %v: want 0 (try once) or a positive duration", wait)
				}
				opts = append(opts, client.WaitAtMost(wait))
			}
			return queueAndHold(cmd.Context(), cf, g, e, sessionTimeout, argv, "lock", func(ctx context.Context, c *client.Client) (client.Grant, error) {
				return c.Lock(ctx, args[0], opts...)
			})
		},
	}
	cmd.Flags().BoolVar(&shared, "shared", false, "a read lock: held with other readers, excluding writers")
	cmd.Flags().DurationVar(&wait, "wait", 0, "give up (TIMEOUT) if the lock is not granted within this long; 0 tries once (default: wait until granted)")
	cmd.Flags().DurationVar(&sessionTimeout, "session-timeout", client.DefaultSessionTimeout, "how long the cluster keeps the lock after this command can no longer be heard from")
	return cmd
}

// electCmd is "arbor elect PATH VALUE [-- COMMAND ARG...]".
func electCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var sessionTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "elect PATH VALUE [-- COMMAND [ARG...]]",
		Short: "Campaign for leadership and run a command while leading",
		Long: `Become a candidate in the election at PATH with VALUE (what "arbor leader"
shows while this candidate leads; "-" reads standard input), wait until elected,
then run COMMAND with the leadership's fencing token in ARBOR_ELECTION_TOKEN,
resign when COMMAND exits and exit with its status. Without COMMAND, print the
token and lead until interrupted.

  arbor elect /services/scheduler/leader "$(hostname):9000" -- ./scheduler

If the leadership is lost (the session expired, or arbor could not reach the
cluster for so long that it may have), COMMAND gets SIGTERM, then SIGKILL 10s
later, and arbor exits 1 naming why.`,
		Args: holdArgs("elect", 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, argv := splitDash(cmd, args)
			value, err := readData(e, args[1])
			if err != nil {
				return err
			}
			return queueAndHold(cmd.Context(), cf, g, e, sessionTimeout, argv, "election", func(ctx context.Context, c *client.Client) (client.Grant, error) {
				return c.Elect(ctx, args[0], value)
			})
		},
	}
	cmd.Flags().DurationVar(&sessionTimeout, "session-timeout", client.DefaultSessionTimeout, "how long the cluster keeps the leadership after this command can no longer be heard from")
	return cmd
}

// queueAndHold dials, waits for the grant (until interrupted), then holds
// it while argv runs (see hold). The grant is lost with the session, or
// when its node is deleted under it (an operator broke the lock).
func queueAndHold(ctx context.Context, cf *clientFlags, g *globals, e env, sessionTimeout time.Duration, argv []string,
	kind string, take func(context.Context, *client.Client) (client.Grant, error)) error {
	dctx, cancel := context.WithTimeout(ctx, cf.timeout)
	c, logger, err := dialCluster(dctx, cf, g, e, sessionTimeout)
	cancel()
	if err != nil {
		return err
	}
	defer closeSession(ctx, c, logger)
	gr, err := take(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while waiting: the normal end
		}
		return failure(err)
	}
	if cf.json {
		out := struct {
			Token uint64 `json:"token"`
			Node  string `json:"node"`
			Zxid  uint64 `json:"zxid"`
		}{gr.Token, gr.Node, gr.Zxid}
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return failure(err)
		}
	} else if len(argv) == 0 {
		fmt.Fprintf(e.stdout, "%d %s\n", gr.Token, gr.Node)
	}
	lost, stop := grantLost(c, gr)
	defer stop()
	what := "the lock " + gr.Path
	envName := "ARBOR_LOCK_TOKEN"
	extra := []string{"ARBOR_LOCK_NODE=" + gr.Node}
	if kind == "election" {
		what, envName, extra = "the leadership of "+gr.Path, "ARBOR_ELECTION_TOKEN", []string{"ARBOR_ELECTION_NODE=" + gr.Node}
	}
	extra = append(extra, envName+"="+strconv.FormatUint(gr.Token, 10), "ARBOR_SESSION="+c.Session())
	return hold(ctx, lost, e, argv, extra, what)
}

// grantLost returns a context that ends when the grant is lost: with the
// session (jeopardy, expiry), or when its node goes.
func grantLost(c *client.Client, gr client.Grant) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(c.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var ev <-chan client.WatchEvent
			st, err := c.Exists(ctx, gr.Node, client.WatchOnce(&ev))
			if err != nil {
				return // the session's own end cancels ctx
			}
			if st == nil || st.Czxid != gr.Token {
				cancel(&client.Error{Code: client.ErrNotHeld.Code, Message: "its node " + gr.Node + " was deleted", Index: -1})
				return
			}
			select {
			case <-ev: // a change (or a resumed connection): look again
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { cancel(nil); <-done }
}

// leaderCmd is "arbor leader PATH [--watch]".
func leaderCmd(cf *clientFlags, g *globals, e env) *cobra.Command {
	var watchIt bool
	cmd := &cobra.Command{
		Use:   "leader PATH [--watch]",
		Short: "Print the current leader of an election (and each new one with --watch)",
		Long: `Print the leader of the election at PATH as "VALUE (session S, token T)", or
"no leader". --watch prints a line at every change of leader until interrupted.
--json prints {"value","session","token"} (null when there is no leader).`,
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
			if !watchIt {
				l, err := c.Leader(dctx, args[0])
				if err != nil {
					return failure(err)
				}
				return printLeader(e.stdout, cf.json, l)
			}
			var last *client.LeaderInfo
			first := true
			for {
				var ev <-chan client.WatchEvent
				l, err := c.Leader(ctx, args[0], client.WatchOnce(&ev))
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return failure(err)
				}
				if first || !sameLeader(last, l) {
					if err := printLeader(e.stdout, cf.json, l); err != nil {
						return failure(err)
					}
				}
				first, last = false, l
				select {
				case <-ev:
				case <-ctx.Done():
					return nil // interrupted: the normal end
				}
			}
		},
	}
	cmd.Flags().BoolVar(&watchIt, "watch", false, "print each new leader until interrupted")
	return cmd
}

func sameLeader(a, b *client.LeaderInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Token == b.Token && string(a.Value) == string(b.Value)
}

func printLeader(w io.Writer, asJSON bool, l *client.LeaderInfo) error {
	if asJSON {
		out := struct {
			Value   *[]byte `json:"value"`
			Session *string `json:"session"`
			Token   *uint64 `json:"token"`
		}{}
		if l != nil {
			out.Value, out.Session, out.Token = &l.Value, &l.Session, &l.Token
		}
		return json.NewEncoder(w).Encode(out)
	}
	if l == nil {
		_, err := fmt.Fprintln(w, "no leader")
		return err
	}
	_, err := fmt.Fprintf(w, "%s (session %s, token %d)\n", l.Value, l.Session, l.Token)
	return err
}
