package cli

import (
	"context"
	"strings"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rootCommand builds kickctl's command tree, bound to e.
func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kickctl",
		Short: "kickctl controls kickcollector, kickmon's watcher of Kick.com streamers",
		Long: `kickctl controls kickcollector, kickmon's watcher of Kick.com streamers.

Read commands take -o table|json. Exit codes: 0 ok, 1 error, 2 usage.`,
		Args: cobra.ArbitraryArgs,
		// Without a known command: a usage error, not cobra's help (exit 2).
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("missing command")
			}
			return usagef("unknown command %q", args[0])
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetUsageTemplate(usageTemplate)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cmd: c, msg: err.Error()}
	})
	root.PersistentFlags().StringVar(&e.socket, "socket", e.socket, "collector socket `path` (env KICKMON_SOCKET)")
	root.PersistentFlags().StringVar(&e.notifySocket, "notify-socket", e.notifySocket, "kicknotify socket `path` (env KICKMON_NOTIFY_SOCKET)")

	streamers := nounCommand("streamers", "List, inspect, add, remove, refresh, export and import watched streamers")
	streamers.AddCommand(
		e.streamersListCommand(),
		e.streamersShowCommand(),
		e.streamersAddCommand(),
		e.streamersRemoveCommand(),
		e.streamersRefreshCommand(),
		e.streamersExportCommand(),
		e.streamersImportCommand(),
	)
	events := nounCommand("events", "Print the collector's event log")
	events.AddCommand(e.eventsTailCommand())
	root.AddCommand(streamers, events, e.notifyCommand(), e.statusCommand(), e.doctorCommand(), e.versionCommand())
	root.SetHelpCommand(helpCommand(root))
	// cobra's "completion" (bash, zsh, fish, powershell); like the nouns, an
	// unknown shell is a usage error rather than its help with exit 0.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "Print a shell completion script (source <(kickctl completion bash))"
			c.Args = cobra.ArbitraryArgs
			c.RunE = verbRequired("completion", "shell")
		}
	}
	return root
}

// usageTemplate is cobra's default without aliases and groups (kickctl has
// none), and with one usage line: commands that group others (the root,
// nouns) run only to report a missing or unknown word.
const usageTemplate = `Usage:
  {{if .HasAvailableSubCommands}}{{.CommandPath}} COMMAND{{else}}{{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run "{{.CommandPath}} COMMAND --help" for a command's flags.{{end}}
`

// The help lists commands in the order they were added: nouns, then verbs
// from the most used.
func init() { cobra.EnableCommandSorting = false }

// nounCommand is the first word of multi-word commands.
func nounCommand(name, summary string) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: summary,
		Args:  cobra.ArbitraryArgs,
		RunE:  verbRequired(name, "verb"),
	}
}

// verbRequired runs a command that only groups others: alone, or followed by
// an unknown word, it is a usage error naming the choices.
func verbRequired(name, what string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		var verbs []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				verbs = append(verbs, c.Name())
			}
		}
		if len(args) == 0 {
			return usagef("%s: missing %s (%s)", name, what, strings.Join(verbs, ", "))
		}
		return usagef("unknown command %q (%s takes %s)", name+" "+args[0], name, strings.Join(verbs, ", "))
	}
}

// helpCommand is "kickctl help [COMMAND]"; an unknown topic is a usage error
// (cobra's own help command exits 0 for it).
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Show help for kickctl or one command",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			c, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var words []cobra.Completion
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					words = append(words, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return words, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("unknown command %q", strings.Join(args, " "))
			}
			return c.Help()
		},
	}
}

// outputFlag registers -o/--output on fs, with its completion.
func outputFlag(cmd *cobra.Command) *outputFormat {
	f := formatTable
	cmd.Flags().VarP(&f, "output", "o", "output `format`: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return &f
}

// completeSlugs completes watched slugs for commands that take them; it
// offers nothing when the collector cannot be reached.
func (e *env) completeSlugs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var slugs []cobra.Completion
	_ = e.unary(cmd.Context(), "list streamers", func(ctx context.Context, c *kickapi.Conn) error {
		resp, err := c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
		for _, s := range resp.GetStreamers() {
			if strings.HasPrefix(s.GetSlug(), toComplete) {
				slugs = append(slugs, s.GetSlug())
			}
		}
		return err
	})
	return slugs, cobra.ShellCompDirectiveNoFileComp
}

// noArgs rejects positional arguments with kickctl's usage message.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", commandPath(cmd), args[0])
	}
	return nil
}

// commandPath is cmd's path without "kickctl " ("streamers list").
func commandPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed
}
