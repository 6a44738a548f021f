package cli

import (
	"context"
	"fmt"
	"io"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamersShowCommand is "kickctl streamers show SLUG".
func (e *env) streamersShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show SLUG",
		Short: "Show one streamer in detail: ids, state, session, coverage per source",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return e.completeSlugs(cmd, args, toComplete)
		},
	}
	out := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("streamers show takes exactly one slug, got %d", len(args))
		}
		return e.showStreamer(cmd.Context(), args[0], *out)
	}
	return cmd
}

// showStreamer prints one watched streamer in detail.
func (e *env) showStreamer(ctx context.Context, slug string, out outputFormat) error {
	var resp *kickmonv1.GetStreamerResponse
	err := e.unary(ctx, "show "+slug, func(ctx context.Context, c *kickapi.Conn) (err error) {
		resp, err = c.GetStreamer(ctx, &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_Slug{Slug: slug}})
		if status.Code(err) == codes.NotFound {
			return fmt.Errorf("%q is not watched (kickctl streamers add %s)", slug, slug)
		}
		return err
	})
	if err != nil {
		return err
	}
	if out == formatJSON {
		return writeJSON(e.stdout, resp.GetStreamer())
	}
	return e.printStreamer(e.stdout, resp.GetStreamer())
}

// printStreamer writes one streamer as "key: value" lines.
func (e *env) printStreamer(w io.Writer, s *kickmonv1.Streamer) error {
	tw := newTable(w)
	kv := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	kv("slug", "%s", s.GetSlug())
	kv("user id", "%d", s.GetBroadcasterUserId())
	if s.GetChannelId() != 0 {
		kv("channel id", "%d", s.GetChannelId())
	} else {
		kv("channel id", "unknown (Pusher cannot see it until learned from live data or set with --channel-id)")
	}
	state := stateName(s.GetState())
	if s.GetRemoved() {
		state += " (removed from the watch list)"
	}
	kv("state", "%s", state)
	kv("title", "%s", cell(s.GetTitle(), 0))
	if s.GetCategoryId() != 0 {
		kv("category", "%s (id %d)", cell(s.GetCategoryName(), 0), s.GetCategoryId())
	} else {
		kv("category", "%s", cell(s.GetCategoryName(), 0))
	}
	kv("viewers", "%d", s.GetViewerCount())
	kv("live since", "%s", e.when(s.GetLiveSince()))
	kv("last confirmed", "%s", e.when(s.GetLastConfirmedAt()))
	kv("added", "%s", e.when(s.GetAddedAt()))
	if ss := s.GetSession(); ss != nil {
		title := "last session"
		if ss.GetEndedAt() == nil && s.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE {
			title = "session (open)"
		}
		started := e.when(ss.GetStartedAt())
		if ss.GetStartedAtProvisional() {
			started += ", provisional (from push, not yet confirmed by the API)"
		}
		fmt.Fprintf(tw, "%s:\t\n", title)
		kv("  id", "%s", cell(ss.GetSessionId(), 0))
		kv("  started", "%s", started)
		kv("  ended", "%s", e.when(ss.GetEndedAt()))
		kv("  title", "%s", cell(ss.GetTitle(), 0))
		kv("  category", "%s", cell(ss.GetCategoryName(), 0))
		kv("  peak viewers", "%d", ss.GetPeakViewers())
		kv("  detected by", "%s", sourceName(ss.GetDetectedBy()))
		kv("  observed late", "%s", yesNo(ss.GetObservedLate()))
	} else {
		kv("session", "none seen")
	}
	if len(s.GetCoverage()) == 0 {
		kv("coverage", "none reported")
	} else {
		fmt.Fprintf(tw, "coverage:\t\n")
		for _, c := range s.GetCoverage() {
			seeing := "seeing"
			if c.GetBlind() {
				seeing = "BLIND"
				if c.GetReason() != "" {
					seeing += " (" + cell(c.GetReason(), 0) + ")"
				}
			}
			kv("  "+sourceName(c.GetSource()), "%s since %s, last confirmed %s", seeing, e.when(c.GetSince()), e.ago(c.GetLastConfirmedAt()))
		}
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
