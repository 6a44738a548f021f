// Command kickctl is kickmon's control CLI: it lists, adds, removes and
// refreshes watched streamers, shows the collector's status and tails its
// events, over the collector's Unix socket. See internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kickmon/kickmon/ctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
