package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"strconv"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

// exportFormat is the value of export's -o: "json" or "csv".
type exportFormat string

const (
	exportJSON exportFormat = "json"
	exportCSV  exportFormat = "csv"
)

func (f *exportFormat) String() string { return string(*f) }
func (f *exportFormat) Type() string   { return "format" }

func (f *exportFormat) Set(s string) error {
	switch exportFormat(s) {
	case exportJSON, exportCSV:
		*f = exportFormat(s)
		return nil
	}
	return fmt.Errorf("export format %q: want json or csv", s)
}

// csvHeader is the first line of a CSV export; import recognises CSV by it.
var csvHeader = []string{"slug", "broadcaster_user_id", "channel_id"}

// exportJSONOptions leave unset fields out: the export carries only the
// watch list (slug, user id, channel id when known), as a subset of
// "streamers list -o json", which import also reads.
var exportJSONOptions = protojson.MarshalOptions{UseProtoNames: true}

// streamersExportCommand is "kickctl streamers export [-o json|csv]".
func (e *env) streamersExportCommand() *cobra.Command {
	format := exportJSON
	cmd := &cobra.Command{
		Use:               "export",
		Short:             "Print the watch list (slugs, user and channel ids) for streamers import",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.Flags().VarP(&format, "output", "o", "output `format`: json or csv")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"json", "csv"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return e.exportStreamers(cmd.Context(), format)
	}
	return cmd
}

// exportStreamers prints the watched streamers' identities.
func (e *env) exportStreamers(ctx context.Context, format exportFormat) error {
	resp, err := e.streamers(ctx, false)
	if err != nil {
		return err
	}
	list := &kickmonv1.ListStreamersResponse{}
	for _, s := range resp.GetStreamers() {
		list.Streamers = append(list.Streamers, &kickmonv1.Streamer{
			Slug: s.GetSlug(), BroadcasterUserId: s.GetBroadcasterUserId(), ChannelId: s.GetChannelId(),
		})
	}
	if format == exportJSON {
		return writeJSONWith(e.stdout, exportJSONOptions, list)
	}
	w := csv.NewWriter(e.stdout)
	_ = w.Write(csvHeader)
	for _, s := range list.GetStreamers() {
		channel := ""
		if s.GetChannelId() != 0 {
			channel = strconv.FormatInt(s.GetChannelId(), 10)
		}
		_ = w.Write([]string{s.GetSlug(), strconv.FormatInt(s.GetBroadcasterUserId(), 10), channel})
	}
	w.Flush()
	return w.Error()
}
