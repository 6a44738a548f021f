package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/spf13/cobra"
)

// version is kickctl's version; the build may set it with
// -ldflags "-X github.com/kickmon/kickmon/ctl/internal/cli.version=v1.2.3".
var version = ""

// Version is kickctl's version: the linker-set one, else the module version
// or VCS revision recorded in the binary, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

// versionJSON is the -o json shape of kickctl version.
type versionJSON struct {
	Client    versionInfo  `json:"client"`
	Collector *versionInfo `json:"collector"`
}

type versionInfo struct {
	Version string `json:"version"`
}

// versionCommand is "kickctl version [--client]".
func (e *env) versionCommand() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:               "version",
		Short:             "Print kickctl's version and the collector's",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(cmd)
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print only kickctl's version, without asking the collector")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return e.printVersion(cmd.Context(), clientOnly, *out)
	}
	return cmd
}

// printVersion prints kickctl's version and, unless clientOnly, the
// collector's; the client's is printed even when the collector is down.
func (e *env) printVersion(ctx context.Context, clientOnly bool, out outputFormat) error {
	v := versionJSON{Client: versionInfo{Version: e.version}}
	var err error
	if !clientOnly {
		var st *kickmonv1.CollectorStatus
		if st, err = e.collectorStatus(ctx, "version"); err == nil {
			v.Collector = &versionInfo{Version: st.GetVersion()}
		}
	}
	if out == formatJSON {
		b, jerr := json.MarshalIndent(v, "", "  ")
		if jerr != nil {
			return fmt.Errorf("encode version: %w", jerr)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(e.stdout, "kickctl %s\n", v.Client.Version)
	if v.Collector != nil {
		fmt.Fprintf(e.stdout, "kickcollector %s\n", v.Collector.Version)
	}
	return err
}
