package cli

import (
	"context"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// streamersRemoveCommand is "kickctl streamers remove SLUG...".
func (e *env) streamersRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "remove SLUG...",
		Short:             "Stop watching streamers (exit 1 if any is not watched)",
		ValidArgsFunction: e.completeSlugs,
	}
	out := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("streamers remove needs at least one slug")
		}
		return e.removeStreamers(cmd.Context(), args, *out)
	}
	return cmd
}

// removeStreamers stops watching slugs and prints one result per slug.
func (e *env) removeStreamers(ctx context.Context, slugs []string, out outputFormat) error {
	var resp *kickmonv1.RemoveStreamersResponse
	err := e.unary(ctx, "remove streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
		resp, err = c.RemoveStreamers(ctx, &kickmonv1.RemoveStreamersRequest{Slugs: slugs})
		return err
	})
	if err != nil {
		return err
	}
	return e.printResults(out, resp, resp.GetResults(), resultLines{verb: "remove", done: "removed"})
}
