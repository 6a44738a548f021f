package cli

import (
	"context"
	"flag"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
)

// streamersRemoveCommand is "kickctl streamers remove SLUG...".
func streamersRemoveCommand() *command {
	return &command{
		path:    "streamers remove",
		args:    "SLUG...",
		summary: "Stop watching streamers (exit 1 if any is not watched)",
		slugs:   true,
		setup: func(fs *flag.FlagSet) runFunc {
			out := outputFlag(fs)
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) == 0 {
					return usagef(nil, "streamers remove needs at least one slug")
				}
				var resp *kickmonv1.RemoveStreamersResponse
				err := e.unary(ctx, "remove streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
					resp, err = c.RemoveStreamers(ctx, &kickmonv1.RemoveStreamersRequest{Slugs: args})
					return err
				})
				if err != nil {
					return err
				}
				return e.printResults(*out, resp, resp.GetResults(), resultLines{verb: "remove", done: "removed"})
			}
		},
	}
}
