package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime/debug"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
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
func versionCommand() *command {
	return &command{
		path:    "version",
		summary: "Print kickctl's version and the collector's",
		setup: func(fs *flag.FlagSet) runFunc {
			out := outputFlag(fs)
			clientOnly := fs.Bool("client", false, "print only kickctl's version, without asking the collector")
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef(nil, "version takes no arguments, got %q", args[0])
				}
				v := versionJSON{Client: versionInfo{Version: e.version}}
				var err error
				if !*clientOnly {
					err = e.unary(ctx, "version", func(ctx context.Context, c *kickapi.Conn) error {
						resp, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
						if err == nil {
							v.Collector = &versionInfo{Version: resp.GetStatus().GetVersion()}
						}
						return err
					})
				}
				if *out == formatJSON {
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
		},
	}
}
