package cli

import (
	"context"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// streamersAddCommand is "kickctl streamers add SLUG... [--channel-id N]".
func (e *env) streamersAddCommand() *cobra.Command {
	var channelID int64
	cmd := &cobra.Command{
		Use:               "add SLUG...",
		Short:             "Watch streamers (slugs resolved through Kick's official API; exit 1 if any fails)",
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(cmd)
	cmd.Flags().Int64Var(&channelID, "channel-id", 0, "Kick channel `id` for Pusher (only with exactly one slug)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usagef("streamers add needs at least one slug")
		case channelID < 0:
			return usagef("--channel-id must be positive, got %d", channelID)
		case channelID != 0 && len(args) != 1:
			return usagef("--channel-id takes exactly one slug, got %d", len(args))
		}
		return e.addStreamers(cmd.Context(), args, channelID, *out)
	}
	return cmd
}

// addStreamers watches slugs and prints one result per slug.
func (e *env) addStreamers(ctx context.Context, slugs []string, channelID int64, out outputFormat) error {
	var resp *kickmonv1.AddStreamersResponse
	err := e.unary(ctx, "add streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
		resp, err = c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: slugs, ChannelId: channelID})
		return err
	})
	if err != nil {
		return err
	}
	return e.printResults(out, resp, resp.GetResults(), resultLines{verb: "add", done: "added", same: "already watched"})
}
