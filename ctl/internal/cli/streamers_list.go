package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// titleWidth is where streamers list cuts titles.
const titleWidth = 40

// streamersListCommand is "kickctl streamers list".
func (e *env) streamersListCommand() *cobra.Command {
	var removed bool
	cmd := &cobra.Command{
		Use:               "list",
		Short:             "List watched streamers with their current state",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(cmd)
	cmd.Flags().BoolVar(&removed, "removed", false, "also list streamers removed from the watch list")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return e.listStreamers(cmd.Context(), removed, *out)
	}
	return cmd
}

// listStreamers prints the watched streamers (and removed ones with removed).
func (e *env) listStreamers(ctx context.Context, removed bool, out outputFormat) error {
	resp, err := e.streamers(ctx, removed)
	if err != nil {
		return err
	}
	if out == formatJSON {
		return writeJSON(e.stdout, resp)
	}
	return e.printStreamers(e.stdout, resp.GetStreamers())
}

// streamers asks the collector for its watch list.
func (e *env) streamers(ctx context.Context, removed bool) (resp *kickmonv1.ListStreamersResponse, err error) {
	err = e.unary(ctx, "list streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
		resp, err = c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{IncludeRemoved: removed})
		return err
	})
	return resp, err
}

// printStreamers writes the streamers table.
func (e *env) printStreamers(w io.Writer, list []*kickmonv1.Streamer) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "SLUG\tSTATE\tTITLE\tCATEGORY\tVIEWERS\tLIVE SINCE\tLAST CONFIRMED\tCOVERAGE")
	for _, s := range list {
		state := stateName(s.GetState())
		if s.GetRemoved() {
			state += " (removed)"
		}
		viewers := "-"
		if s.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE {
			viewers = strconv.FormatInt(s.GetViewerCount(), 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(s.GetSlug(), 0), state, cell(s.GetTitle(), titleWidth), cell(s.GetCategoryName(), 24),
			viewers, e.since(s.GetLiveSince()), e.ago(s.GetLastConfirmedAt()), coverage(s.GetCoverage()))
	}
	return tw.Flush()
}
