package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kickmon/kickmon/proto/kickapi"
)

// runFunc runs a command with its positional arguments, after its flags
// (registered by command.setup) were parsed.
type runFunc func(ctx context.Context, e *env, args []string) error

// command is one "noun verb" (or single-word) command.
type command struct {
	path    string // "streamers list"
	args    string // positional synopsis, e.g. "SLUG..."
	summary string
	// setup registers the command's flags on fs and returns the runner that
	// reads them.
	setup func(fs *flag.FlagSet) runFunc
	// slugs: the positional arguments are watched slugs (for completion).
	slugs bool
	// words are the fixed choices for the positional argument (completion).
	words []string
	// hidden commands are for completion scripts, not listed in help.
	hidden bool
}

// nounSummaries describe the first word of multi-word commands.
var nounSummaries = map[string]string{
	"streamers": "List, inspect, add, remove and refresh watched streamers",
	"events":    "Print the collector's event log",
}

// flagSet returns the command's flags (with the global --socket, bound to
// socket) and the runner that reads them.
func (c *command) flagSet(socket *string) (*flag.FlagSet, runFunc) {
	fs := flag.NewFlagSet("kickctl "+c.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(socket, "socket", *socket, "collector socket `path` (env KICKMON_SOCKET)")
	return fs, c.setup(fs)
}

// commands is every command, in the order help lists them.
func commands() []*command {
	return []*command{
		streamersListCommand(),
		streamersShowCommand(),
		streamersAddCommand(),
		streamersRemoveCommand(),
		streamersRefreshCommand(),
		statusCommand(),
		eventsTailCommand(),
		versionCommand(),
		completionCommand(),
		helpCommand(),
		completeSlugsCommand(),
	}
}

// nouns returns the first words of multi-word commands and their verbs.
func nouns() map[string][]string {
	m := map[string][]string{}
	for _, c := range commands() {
		if noun, verb, ok := strings.Cut(c.path, " "); ok {
			m[noun] = append(m[noun], verb)
		}
	}
	return m
}

// lookup finds the command named by the leading words of args and returns
// it with the remaining arguments.
func lookup(args []string) (*command, []string, error) {
	if len(args) == 0 {
		return nil, nil, usagef(nil, "missing command")
	}
	for _, c := range commands() {
		words := strings.Fields(c.path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.path {
			return c, args[len(words):], nil
		}
	}
	if verbs, ok := nouns()[args[0]]; ok {
		if len(args) == 1 || strings.HasPrefix(args[1], "-") {
			return nil, nil, usagef(nil, "%s: missing verb (%s)", args[0], strings.Join(verbs, ", "))
		}
		return nil, nil, usagef(nil, "unknown command %q (%s takes %s)", args[0]+" "+args[1], args[0], strings.Join(verbs, ", "))
	}
	return nil, nil, usagef(nil, "unknown command %q", args[0])
}

// printUsage writes the top-level help.
func printUsage(w io.Writer) {
	fmt.Fprintf(w, `kickctl controls kickcollector, kickmon's watcher of Kick.com streamers.

Usage:
  kickctl [--socket PATH] COMMAND [ARGS] [FLAGS]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.path+" "+c.args), c.summary)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, `
Global flags (before or after the command):
  --socket PATH  collector socket (env KICKMON_SOCKET, default %s)

Read commands take -o table|json. Exit codes: 0 ok, 1 error, 2 usage.
Run 'kickctl COMMAND --help' for a command's flags.
`, kickapi.DefaultSocketPath)
}

// printCommandUsage writes one command's help; fs holds its flags.
func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: kickctl %s [FLAGS]\n\n%s.\n\nFlags:\n", strings.TrimSpace(c.path+" "+c.args), c.summary)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if isAlias(fs, f.Name) {
			return
		}
		dash := "--"
		if long, ok := shortFlags[f.Name]; ok && fs.Lookup(long) != nil {
			dash = "-" + f.Name + ", --"
			f = fs.Lookup(long)
		} else if len(f.Name) == 1 {
			dash = "-"
		}
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s%s%s\t%s\n", dash, f.Name, name, usage)
	})
	_ = tw.Flush()
}

// shortFlags pairs one-letter flags with their long aliases (-o, --output).
var shortFlags = map[string]string{"o": "output", "f": "follow"}

// isAlias reports whether name is the long alias of a short flag in fs; help
// shows the pair once.
func isAlias(fs *flag.FlagSet, name string) bool {
	for short, long := range shortFlags {
		if long == name && fs.Lookup(short) != nil {
			return true
		}
	}
	return false
}

// helpCommand is "kickctl help [COMMAND]".
func helpCommand() *command {
	return &command{
		path:    "help",
		args:    "[COMMAND]",
		summary: "Show help for kickctl or one command",
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) == 0 || len(args) == 1 && nouns()[args[0]] != nil {
					printUsage(e.stdout)
					return nil
				}
				c, rest, err := lookup(args)
				if err != nil {
					return err
				}
				if len(rest) > 0 {
					return usagef(nil, "unknown command %q", strings.Join(args, " "))
				}
				socket := e.socket
				cfs, _ := c.flagSet(&socket)
				printCommandUsage(e.stdout, c, cfs)
				return nil
			}
		},
	}
}
