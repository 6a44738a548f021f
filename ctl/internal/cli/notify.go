package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// DefaultNotifySocket is kicknotify's socket (KICKMON_NOTIFY_SOCKET).
const DefaultNotifySocket = "/run/kickmon-notify/notify.sock"

// notifySocketPath is KICKMON_NOTIFY_SOCKET, else the default.
func notifySocketPath(getenv func(string) string) string {
	if p := getenv("KICKMON_NOTIFY_SOCKET"); p != "" {
		return p
	}
	return DefaultNotifySocket
}

// notifyCommand is "kickctl notify status|test".
func (e *env) notifyCommand() *cobra.Command {
	n := nounCommand("notify", "Show kicknotify's deliveries, send a test message")

	status := &cobra.Command{
		Use:               "status",
		Short:             "Show the notification backlog and each target's deliveries and failures",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(status)
	status.RunE = func(cmd *cobra.Command, args []string) error { return e.notifyStatus(cmd.Context(), *out) }

	test := &cobra.Command{
		Use:               "test TARGET",
		Short:             "Send a test message to a target of notify.yaml now",
		ValidArgsFunction: cobra.NoFileCompletions,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("notify test takes one target name, got %d arguments", len(args))
			}
			return nil
		},
	}
	test.RunE = func(cmd *cobra.Command, args []string) error { return e.notifyTest(cmd.Context(), args[0]) }
	n.AddCommand(status, test)
	return n
}

// notifyUnary runs one call to kicknotify with an actionable error.
func (e *env) notifyUnary(ctx context.Context, op string, call func(context.Context, kickmonv1.NotifyServiceClient) error) error {
	c, err := kickapi.Dial(e.notifySocket)
	if err != nil {
		return notifyWords(err)
	}
	defer c.Close()
	client := kickmonv1.NewNotifyServiceClient(c.ClientConn())
	err = e.withTimeout(ctx, func(ctx context.Context) error { return call(ctx, client) })
	if x := kickapi.Explain(e.notifySocket, err); x != err {
		return notifyWords(x)
	}
	return e.rpcError(op, err)
}

// notifyWords names kicknotify in kickapi's messages about the collector.
func notifyWords(err error) error {
	return errors.New(strings.NewReplacer("kickmon-collector", "kickmon-notify", "kickcollector", "kicknotify").Replace(err.Error()))
}

func (e *env) notifierStatus(ctx context.Context) (*kickmonv1.GetNotifierStatusResponse, error) {
	var st *kickmonv1.GetNotifierStatusResponse
	err := e.notifyUnary(ctx, "notify status", func(ctx context.Context, c kickmonv1.NotifyServiceClient) error {
		var err error
		st, err = c.GetNotifierStatus(ctx, &kickmonv1.GetNotifierStatusRequest{})
		return err
	})
	return st, err
}

func (e *env) notifyStatus(ctx context.Context, out outputFormat) error {
	st, err := e.notifierStatus(ctx)
	if err != nil {
		return err
	}
	if out == formatJSON {
		return writeJSON(e.stdout, st)
	}
	tw := newTable(e.stdout)
	fmt.Fprintf(tw, "notifier:\t%s\n", e.notifierSummary(st))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	tw = newTable(e.stdout)
	fmt.Fprintln(tw, "TARGET\tTYPE\tPENDING\tRETRYING\tDELIVERED 24H\tFAILED 24H\tLAST DELIVERY\tLAST ERROR")
	for _, t := range st.GetTargets() {
		lastErr := "-"
		if t.GetLastError() != "" {
			lastErr = e.ago(t.GetLastErrorAt()) + ": " + cell(t.GetLastError(), 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", cell(t.GetName(), 0), t.GetType(), t.GetPending(), t.GetRetrying(),
			t.GetDelivered(), t.GetFailed(), e.ago(t.GetLastDeliveredAt()), lastErr)
	}
	return tw.Flush()
}

// notifierSummary is the one line kickctl status shows about kicknotify.
func (e *env) notifierSummary(st *kickmonv1.GetNotifierStatusResponse) string {
	var pending, retrying, failed int64
	for _, t := range st.GetTargets() {
		pending, retrying, failed = pending+t.GetPending(), retrying+t.GetRetrying(), failed+t.GetFailed()
	}
	deliveries := "deliveries"
	if pending == 1 {
		deliveries = "delivery"
	}
	s := fmt.Sprintf("%d target%s, %d event%s to fan out, %d %s pending, %d retrying, %d failed in 24h",
		len(st.GetTargets()), plural(len(st.GetTargets())), st.GetEventsPending(), plural(int(st.GetEventsPending())),
		pending, deliveries, retrying, failed)
	if st.GetOldestPendingAt() != nil {
		s += ", oldest waiting since " + e.ago(st.GetOldestPendingAt())
	}
	return s
}

// printNotifier adds kicknotify's line to kickctl status: its summary, or
// why it cannot be had (kicknotify is optional: that is not an error).
func (e *env) printNotifier(ctx context.Context, w io.Writer) error {
	if e.notifySocket == "" {
		return nil
	}
	line := ""
	if _, err := os.Stat(e.notifySocket); errors.Is(err, fs.ErrNotExist) {
		line = "not running (no socket at " + e.notifySocket + ")"
	} else if st, err := e.notifierStatus(ctx); err != nil {
		line = err.Error()
	} else {
		line = e.notifierSummary(st)
	}
	tw := newTable(w)
	fmt.Fprintln(w)
	fmt.Fprintf(tw, "notifier:\t%s\n", line)
	return tw.Flush()
}

// notifyTest sends a test message through kicknotify.
func (e *env) notifyTest(ctx context.Context, target string) error {
	var resp *kickmonv1.SendTestResponse
	err := e.notifyUnary(ctx, "notify test "+target, func(ctx context.Context, c kickmonv1.NotifyServiceClient) error {
		var err error
		resp, err = c.SendTest(ctx, &kickmonv1.SendTestRequest{Target: target})
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "test message sent to %s: %s\n", target, resp.GetStatus())
	return err
}
