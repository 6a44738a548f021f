package cli

import (
	"context"
	"flag"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
)

// streamersRefreshCommand is "kickctl streamers refresh [SLUG...]".
func streamersRefreshCommand() *command {
	return &command{
		path:    "streamers refresh",
		args:    "[SLUG...]",
		summary: "Ask the collector to check streamers now, out of turn (all when no slug is given)",
		slugs:   true,
		setup: func(fs *flag.FlagSet) runFunc {
			out := outputFlag(fs)
			return func(ctx context.Context, e *env, args []string) error {
				var resp *kickmonv1.RefreshStreamersResponse
				err := e.unary(ctx, "refresh streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
					resp, err = c.RefreshStreamers(ctx, &kickmonv1.RefreshStreamersRequest{Slugs: args})
					return err
				})
				if err != nil {
					return err
				}
				return e.printResults(*out, resp, resp.GetResults(), resultLines{verb: "refresh", done: "refresh requested for", summary: len(args) == 0})
			}
		},
	}
}
