// Command kickcollector watches Kick streamers and serves kickmon's event
// stream on a Unix socket. Configuration is documented in README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kickmon/kickmon/collector/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kickcollector: %v\n", err)
		os.Exit(1)
	}
}
