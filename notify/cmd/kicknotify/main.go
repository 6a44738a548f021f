// Command kicknotify delivers kickmon's go-live (and other) notifications
// to Discord, Slack, ntfy and signed webhooks, from the notable events the
// writer records in kickmon.notify_outbox. See internal/app.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // quiet_hours time zones on machines without zoneinfo

	"github.com/kickmon/kickmon/notify/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kicknotify: %v\n", err)
		if errors.Is(err, app.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
