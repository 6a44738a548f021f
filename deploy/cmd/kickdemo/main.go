// Command kickdemo runs the whole kickmon system against the Kick simulator
// and opens kickview; quitting kickview stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kickmon/kickmon/deploy/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("kickdemo", flag.ExitOnError)
	o := demo.Options{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding the kickmon binaries (make build)")
	fs.IntVar(&o.Streamers, "streamers", 40, "streamers in the simulated world")
	fs.Float64Var(&o.Rate, "rate", 0.5, "simulated changes per second")
	fs.BoolVar(&o.Headless, "headless", false, "do not open kickview; run until interrupted")
	fs.StringVar(&o.Realtime, "realtime", "both", "realtime providers kicksim offers (pusher, centrifugo, both, none); the collector takes Centrifugo when offered")
	_ = fs.Parse(os.Args[1:])
	if err := demo.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "kickdemo: %v\n", err)
		os.Exit(1)
	}
}
