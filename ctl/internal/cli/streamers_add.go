package cli

import (
	"context"
	"flag"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
)

// streamersAddCommand is "kickctl streamers add SLUG... [--channel-id N]".
func streamersAddCommand() *command {
	return &command{
		path:    "streamers add",
		args:    "SLUG...",
		summary: "Watch streamers (slugs resolved through Kick's official API; exit 1 if any fails)",
		setup: func(fs *flag.FlagSet) runFunc {
			out := outputFlag(fs)
			channelID := fs.Int64("channel-id", 0, "Kick channel `id` for Pusher (only with exactly one slug)")
			return func(ctx context.Context, e *env, args []string) error {
				switch {
				case len(args) == 0:
					return usagef(nil, "streamers add needs at least one slug")
				case *channelID < 0:
					return usagef(nil, "--channel-id must be positive, got %d", *channelID)
				case *channelID != 0 && len(args) != 1:
					return usagef(nil, "--channel-id takes exactly one slug, got %d", len(args))
				}
				var resp *kickmonv1.AddStreamersResponse
				err := e.unary(ctx, "add streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
					resp, err = c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: args, ChannelId: *channelID})
					return err
				})
				if err != nil {
					return err
				}
				return e.printResults(*out, resp, resp.GetResults(), resultLines{verb: "add", done: "added", same: "already watched"})
			}
		},
	}
}
