// Command kickbench measures the whole system on this machine (make
// bench-system) and prints the table of BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/kickmon/kickmon/deploy/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("kickbench", flag.ExitOnError)
	o := bench.Options{Out: os.Stdout, Log: os.Stderr}
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding the kickmon binaries (make build)")
	fs.StringVar(&o.RepoDir, "repo", ".", "the checkout (for the writer's go test benchmark)")
	fs.BoolVar(&o.Quick, "quick", false, "shorter phases, for iteration")
	fs.StringVar(&o.ProfileDir, "profile", "", "directory for CPU and heap profiles of both daemons (go tool pprof)")
	fs.IntVar(&o.WriterRuns, "writer-runs", 3, "runs of the writer's BenchmarkWriter (0: skip it)")
	streamers := fs.String("streamers", "10000,100000", "world sizes, comma-separated")
	rates := fs.String("rates", "1000,10000", "changes per second under load, comma-separated")
	_ = fs.Parse(os.Args[1:])
	var err error
	if o.Streamers, err = ints(*streamers); err == nil {
		o.Rates, err = ints(*rates)
	}
	if err == nil {
		err = bench.Run(ctx, o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kickbench: %v\n", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}
