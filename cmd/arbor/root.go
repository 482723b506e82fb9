package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// env is the process environment, injected so tests can run commands in
// process too.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	lookup func(string) (string, bool)
	// stdoutTTY: stdout is a terminal, for output meant for people.
	stdoutTTY bool
}

// exitError carries an exit status and the one line to print for it.
type exitError struct {
	code int
	msg  string
	// showUsage: wrong usage of the command, whose usage line is printed
	// after msg (not for a start-up problem such as a busy port).
	showUsage bool
}

func (e *exitError) Error() string { return e.msg }

// usageErrorf is wrong usage: exit status 2, with the command's usage line.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...), showUsage: true}
}

// globals are the flags every command has.
type globals struct {
	logLevel string
	logSet   bool
	level    slog.Level
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	var g globals
	root := newRoot(&g, e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Everything cobra itself reports (unknown command, wrong number
		// of arguments) is wrong usage.
		ee = &exitError{code: exitUsage, msg: err.Error(), showUsage: true}
	}
	if cmd == nil {
		cmd = root
	}
	switch {
	case ee.code == exitUsage:
		fmt.Fprintf(e.stderr, "Error: %s\n", ee.msg)
		if ee.showUsage && cmd != root {
			fmt.Fprintf(e.stderr, "Usage: %s\nRun '%s --help' for more.\n", cmd.UseLine(), cmd.CommandPath())
		} else {
			fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	case ee.msg != "": // a command's own exit status passed through says nothing
		fmt.Fprintln(e.stderr, oneLine(ee.msg))
	}
	return ee.code
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func newRoot(g *globals, e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "arbor",
		Short: "Arbor: a strongly consistent coordination service",
		Long: `Arbor is a coordination service: a small, strongly consistent tree of nodes
for leader election, locks, configuration and service discovery.

Every flag can also be given as an environment variable: --client-addr as
ARBOR_CLIENT_ADDR, --endpoints as ARBOR_ENDPOINTS, and so on. A flag on the
command line wins over the environment.

Exit status: 0 on success; 1 when the operation failed, with one line
"CODE: message" on stderr (for example "NO_NODE: /a/b does not exist");
2 for wrong usage.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.lookup); err != nil {
				return err
			}
			return g.parseLevel(cmd.Flags())
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn or error (default: info; arbor dev: warn; client commands log nothing unless it is given)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageErrorf("%s", flagError(err))
	})
	root.AddCommand(newDevCmd(g, e), newServerCmd(g, e), newBenchCommand(), newVersionCmd(e))
	addClientCommands(root, g, e)
	return root
}

// applyEnv fills every flag not given on the command line from its
// environment variable ARBOR_<FLAG_UPPER_SNAKE>.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		name := envName(f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usageErrorf("invalid value %q for --%s (from %s): %s", v, f.Name, name, wantValue(f))
		}
	})
	return err
}

func envName(flag string) string {
	return "ARBOR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagError words a flag parsing error plainly: a bad value says what the
// flag wants rather than which strconv function failed.
func flagError(err error) string {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		return fmt.Sprintf("invalid --%s %q: %s", ive.GetFlag().Name, ive.GetValue(), wantValue(ive.GetFlag()))
	}
	return err.Error()
}

// wantValue says what kind of value a flag takes.
func wantValue(f *pflag.Flag) string {
	switch t := f.Value.Type(); t {
	case "int", "int64", "uint64":
		return "want a whole number"
	case "duration":
		return "want a duration such as 500ms, 10s or 1m30s"
	case "bool":
		return "want true or false"
	default:
		return "want a " + t
	}
}

// parseLevel sets the log level; "" is the default, info.
func (g *globals) parseLevel(fs *pflag.FlagSet) error {
	if g.logLevel != "" {
		if err := g.level.UnmarshalText([]byte(g.logLevel)); err != nil {
			return usageErrorf("invalid --log-level %q: want debug, info, warn or error", g.logLevel)
		}
	}
	if f := fs.Lookup("log-level"); f != nil {
		g.logSet = f.Changed
	}
	return nil
}

// logger logs text to stderr at the chosen level.
func (g *globals) logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: g.level}))
}
