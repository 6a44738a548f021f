package cli

import (
	"context"
	"fmt"
	"io"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// eventsTailCommand is "kickctl events tail [--from SEQ] [-n N] [--follow]".
func (e *env) eventsTailCommand() *cobra.Command {
	var (
		from, n uint64
		follow  bool
	)
	cmd := &cobra.Command{
		Use:               "tail",
		Short:             "Print the collector's events (the last 10, or from --from) up to the newest; --follow keeps following",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(cmd)
	cmd.Flags().Uint64Var(&from, "from", 0, "first `seq` to print (0: the oldest retained); overrides -n")
	cmd.Flags().Uint64VarP(&n, "lines", "n", 10, "print the last `N` events (without --from)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted (Ctrl-C)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fromSet := flagSet(cmd.Flags(), "from")
		t := &tail{env: e, format: *out, follow: follow}
		return t.run(cmd.Context(), func(sp *kickmonv1.SpoolStatus) uint64 {
			switch {
			case fromSet:
				return from
			case sp.GetLastSeq() < n:
				return 0
			}
			return max(sp.GetFirstSeq(), sp.GetLastSeq()-n+1)
		})
	}
	return cmd
}

// tail prints events from the collector's spool.
type tail struct {
	*env
	format outputFormat
	follow bool
}

// run prints events from start(spool) up to the spool's current last seq,
// or forever with follow. A follower whose stream breaks (collector restart,
// too slow) resumes after the last printed seq.
func (t *tail) run(ctx context.Context, start func(*kickmonv1.SpoolStatus) uint64) error {
	st, err := t.collectorStatus(ctx, "events tail")
	if err != nil {
		return err
	}
	sp := st.GetSpool()
	last := sp.GetLastSeq()
	next := start(sp)
	if t.format == formatTable {
		fmt.Fprintf(t.stdout, eventLine, "SEQ", "TIME", "KIND", "SLUG", "SOURCE", "DETAIL")
	}
	if !t.follow && (last == 0 || next > last) {
		return nil
	}
	c, err := t.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opts []grpc.CallOption
	for {
		stream, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: next}, opts...)
		if err == nil {
			next, err = t.print(stream, next, last)
		}
		switch {
		case err == nil || isCanceled(ctx, err):
			return nil
		case kickapi.IsOutOfRange(err):
			return fmt.Errorf("events tail: %s (the spool dropped them; start later with --from, or use -n)", status.Convert(err).Message())
		case status.Code(err) == codes.ResourceExhausted || t.follow && status.Code(err) == codes.Unavailable:
			fmt.Fprintf(t.stderr, "kickctl: event stream interrupted (%s); resuming from seq %d\n", status.Convert(err).Message(), next)
			opts = []grpc.CallOption{grpc.WaitForReady(true)}
		default:
			return t.rpcError("events tail", err)
		}
	}
}

// print prints events from stream until last (unless following) and returns
// the next seq wanted.
func (t *tail) print(stream grpc.ServerStreamingClient[kickmonv1.WatchEventsResponse], next, last uint64) (uint64, error) {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return next, err
		}
		for _, ev := range resp.GetEvents() {
			if err := t.printEvent(t.stdout, ev); err != nil {
				return next, err
			}
			next = ev.GetSeq() + 1
			if !t.follow && ev.GetSeq() >= last {
				return next, nil
			}
		}
	}
}

// eventLine is the layout of a table line: SEQ TIME KIND SLUG SOURCE DETAIL.
const eventLine = "%-7v %-19s %-17s %-20s %-9s %s\n"

func (t *tail) printEvent(w io.Writer, ev *kickmonv1.Event) error {
	if t.format == formatJSON {
		return writeJSONLine(w, ev)
	}
	when := "-"
	if ev.GetObservedAt() != nil {
		when = t.clock(ev.GetObservedAt()).Format("2006-01-02 15:04:05")
	}
	_, err := fmt.Fprintf(w, eventLine, ev.GetSeq(), when, kindName(ev.GetKind()),
		cell(ev.GetStreamer().GetSlug(), 0), sourceName(ev.GetSource()), t.detail(ev))
	return err
}

// detail is the kind-specific end of an event line.
func (t *tail) detail(ev *kickmonv1.Event) string {
	s, ss := ev.GetStreamer(), ev.GetSession()
	switch ev.GetKind() {
	case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
		d := fmt.Sprintf("%q in %s", cell(s.GetTitle(), titleWidth), cell(s.GetCategoryName(), 0))
		if ss.GetStartedAtProvisional() {
			d += " (start time provisional)"
		}
		if ss.GetObservedLate() {
			d += " (observed late)"
		}
		return d
	case kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
		if ss.GetStartedAt() != nil && ss.GetEndedAt() != nil {
			return fmt.Sprintf("after %s, peak %d viewers", duration(ss.GetEndedAt().AsTime().Sub(ss.GetStartedAt().AsTime())), ss.GetPeakViewers())
		}
		return fmt.Sprintf("peak %d viewers", ss.GetPeakViewers())
	case kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
		return fmt.Sprintf("%d viewers, %q in %s", s.GetViewerCount(), cell(s.GetTitle(), titleWidth), cell(s.GetCategoryName(), 0))
	case kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED:
		if s.GetChannelId() != 0 {
			return fmt.Sprintf("user %d, channel %d", s.GetBroadcasterUserId(), s.GetChannelId())
		}
		return fmt.Sprintf("user %d", s.GetBroadcasterUserId())
	case kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED:
		return fmt.Sprintf("user %d", s.GetBroadcasterUserId())
	case kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED:
		return "was " + cell(ev.GetPreviousSlug(), 0)
	case kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED:
		c := ev.GetCoverage()
		if !c.GetBlind() {
			return sourceName(c.GetSource()) + " sees it again"
		}
		if c.GetReason() != "" {
			return sourceName(c.GetSource()) + " blind: " + cell(c.GetReason(), 0)
		}
		return sourceName(c.GetSource()) + " blind"
	}
	return ""
}
