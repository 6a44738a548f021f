package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
)

// titleWidth is where streamers list cuts titles.
const titleWidth = 40

// streamersListCommand is "kickctl streamers list".
func streamersListCommand() *command {
	return &command{
		path:    "streamers list",
		summary: "List watched streamers with their current state",
		setup: func(fs *flag.FlagSet) runFunc {
			out := outputFlag(fs)
			removed := fs.Bool("removed", false, "also list streamers removed from the watch list")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef(nil, "streamers list takes no arguments, got %q", args[0])
				}
				var resp *kickmonv1.ListStreamersResponse
				err := e.unary(ctx, "list streamers", func(ctx context.Context, c *kickapi.Conn) (err error) {
					resp, err = c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{IncludeRemoved: *removed})
					return err
				})
				if err != nil {
					return err
				}
				if *out == formatJSON {
					return writeJSON(e.stdout, resp)
				}
				return e.printStreamers(e.stdout, resp.GetStreamers())
			}
		},
	}
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
