// Package cli implements kickctl, the control CLI of kickmon: nouns then verbs
// (kickctl streamers list|show|add|remove|refresh|export|import, kickctl
// status, kickctl doctor, kickctl events tail, kickctl notify status|test,
// kickctl version, kickctl completion), talking gRPC to kickcollector on its
// Unix socket (and to kicknotify on its own for notify and status).
//
// Run is the whole program; main only adapts the process. The command tree,
// help, flags and shell completion come from cobra; each subcommand file
// builds its *cobra.Command and hands the parsed flags to a plain method of
// env (the socket and the writers), so tests run kickctl on bytes.Buffers.
// Exit codes are 0 (ok), 1 (error) and 2 (usage). Errors are printed once,
// to stderr, prefixed "kickctl: ".
//
// # JSON output
//
// Every read command takes -o json (also the mutating streamers verbs). The
// JSON is the proto3 canonical JSON mapping of the kickmon.v1 messages
// (protojson) with two fixed choices that make it stable for scripts:
// field names are the proto field names (snake_case, e.g.
// "broadcaster_user_id"), and every field is present even when unset (zero
// numbers, "" strings, false, [] lists, null messages and timestamps).
// Consequently enums are their full proto names ("LIVE_STATE_LIVE",
// "SOURCE_POLL", "EVENT_KIND_STREAM_STARTED", "HEALTH_OK"), 64-bit integers
// are JSON strings ("broadcaster_user_id": "123"), timestamps are RFC 3339
// strings in UTC and durations are strings like "60s". Fields are emitted in
// proto field order; whitespace is normalised (two-space indentation, or one
// compact object per line for event streams). New fields may be added in
// later versions; existing ones keep their names and meaning.
//
// Shapes, by command:
//
//	streamers list     ListStreamersResponse  {"streamers": [Streamer…], "last_seq": "N"}
//	streamers show     Streamer               {"broadcaster_user_id": "…", "slug": …, …}
//	streamers add      AddStreamersResponse   {"results": [StreamerResult…]}
//	streamers remove   RemoveStreamersResponse {"results": [StreamerResult…]}
//	streamers refresh  RefreshStreamersResponse {"results": [StreamerResult…]}
//	streamers import   AddStreamersResponse   {"results": [StreamerResult…]}
//	streamers export   ListStreamersResponse  {"streamers": [{"broadcaster_user_id", "slug", "channel_id"}…]}, unset fields left out
//	status             CollectorStatus        {"version": …, "sources": […], "spool": {…}, …}
//	notify status      GetNotifierStatusResponse {"events_pending": "N", "targets": [TargetStatus…], …}
//	doctor             {"ok": bool, "checks": [{"name", "state": "ok"|"warn"|"fail", "summary", "fix"}…]}
//	events tail        Event, one compact object per line (NDJSON)
//	version            {"client": {"version": "…"}, "collector": {"version": "…"}}
//
// The messages are documented field by field in proto/kickmon/v1/*.proto.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// callTimeout bounds every unary call to the collector.
const callTimeout = 10 * time.Second

// Run runs kickctl with args (without the program name) and returns the
// process exit code. getenv reads the environment (KICKMON_SOCKET).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := &env{
		stdin:        os.Stdin,
		stdout:       stdout,
		stderr:       stderr,
		socket:       kickapi.SocketPath(getenv),
		notifySocket: notifySocketPath(getenv),
		now:          time.Now,
		loc:          time.Local,
		timeout:      callTimeout,
		version:      Version(),
		isTerminal:   isTerminal,
	}
	return e.run(ctx, args)
}

// env is what every subcommand runs with; tests fill in now, loc and version.
type env struct {
	stdin          io.Reader // streamers import -
	stdout, stderr io.Writer
	socket         string
	notifySocket   string // kicknotify's; empty: kickctl status leaves it out
	now            func() time.Time
	loc            *time.Location
	timeout        time.Duration
	version        string
	isTerminal     func(io.Writer) bool // whether progress lines may be drawn on w
}

// usageError is a mistake in the command line: exit 2, with usage text.
type usageError struct {
	cmd *cobra.Command // nil: the command being run
	msg string
}

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errReported means the failure was already printed (per-slug results).
var errReported = errors.New("failure already reported")

func (e *env) run(ctx context.Context, args []string) int {
	root := e.rootCommand()
	// SetArgs(nil) would make cobra read os.Args.
	root.SetArgs(append([]string{}, args...))
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		return e.fail(cmd, err)
	}
	return ExitOK
}

// fail prints err once and returns its exit code; cmd is the command that
// failed, whose usage follows a usage error.
func (e *env) fail(cmd *cobra.Command, err error) int {
	var u *usageError
	switch {
	case errors.As(err, &u):
		if u.cmd != nil {
			cmd = u.cmd
		}
		fmt.Fprintf(e.stderr, "kickctl: %s\n", u.msg)
		if cmd != nil {
			fmt.Fprint(e.stderr, cmd.UsageString())
		}
		return ExitUsage
	case errors.Is(err, errReported):
		return ExitError
	default:
		fmt.Fprintf(e.stderr, "kickctl: %s\n", err)
		return ExitError
	}
}
