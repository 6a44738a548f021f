// Command kickrun is make run: kickcollector, kickwriter and a local
// PostgreSQL on real Kick, with kickview in the foreground; quitting kickview
// stops everything and keeps the data for the next run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kickmon/kickmon/deploy/internal/run"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("kickrun", flag.ExitOnError)
	o := run.Options{Environ: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding the kickmon binaries (make build)")
	fs.StringVar(&o.Dir, "dir", ".kickmon", "data directory: PostgreSQL, spool, socket, logs (kept between runs)")
	fs.StringVar(&o.EnvFile, "env-file", ".env", "settings read if the file exists; the environment wins")
	fs.BoolVar(&o.Headless, "headless", false, "do not open kickview; run until interrupted")
	check := fs.Bool("check", false, "only check that Kick's credentials are set (exit 1 with how to get them if not)")
	_ = fs.Parse(os.Args[1:])
	var err error
	if *check {
		_, err = run.Settings(o, os.Stderr)
	} else {
		err = run.Run(ctx, o)
	}
	switch {
	case errors.Is(err, run.ErrNoCredentials):
		os.Exit(1)
	case err != nil:
		fmt.Fprintf(os.Stderr, "kickrun: %v\n", err)
		os.Exit(1)
	}
}
