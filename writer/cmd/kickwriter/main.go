// Command kickwriter follows kickcollector's events and writes them into
// PostgreSQL exactly once. See internal/app.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kickmon/kickmon/writer/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kickwriter: %v\n", err)
		os.Exit(app.ExitCode(err))
	}
}
