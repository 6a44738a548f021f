package cli

import (
	"context"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// streamersRefreshCommand is "kickctl streamers refresh [SLUG...]".
func (e *env) streamersRefreshCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "refresh [SLUG...]",
		Short:             "Ask the collector to check streamers now, out of turn (all when no slug is given)",
		ValidArgsFunction: e.completeSlugs,
	}
	out := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return e.refreshStreamers(cmd.Context(), args, *out)
	}
	return cmd
}

// refreshStreamers asks for out-of-turn checks of slugs (all when empty).
func (e *env) refreshStreamers(ctx context.Context, slugs []string, out outputFormat) error {
	var resp *kickmonv1.RefreshStreamersResponse
	err := e.unary(ctx, "refresh streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
		resp, err = c.RefreshStreamers(ctx, &kickmonv1.RefreshStreamersRequest{Slugs: slugs})
		return err
	})
	if err != nil {
		return err
	}
	return e.printResults(out, resp, resp.GetResults(), resultLines{verb: "refresh", done: "refresh requested for", summary: len(slugs) == 0})
}
