// Package bench measures the whole kickmon system on this machine (make
// bench-system): the release binaries of kicksim, kickcollector and
// kickwriter against a throwaway PostgreSQL with track_commit_timestamp on,
// black-box, at several world sizes and change rates. kicksim's ground
// truth gives the time of each change, pg_xact_commit_timestamp the time
// its row was committed, /proc the collector's CPU and memory. It prints one
// table, each figure beside its goal, with the machine's load average: the
// figures are from a shared machine and say so.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	"github.com/kickmon/kickmon/writer/pgtest"
)

// Options configure a run.
type Options struct {
	BinDir  string // kicksim, kickcollector, kickwriter (make build)
	RepoDir string // the checkout, for the writer's go test benchmark
	Quick   bool   // shorter phases, for iteration
	// ProfileDir, if set, receives CPU and heap profiles of both daemons
	// (through KICKMON_PPROF_ADDR) for the quiet and load phases.
	ProfileDir string
	// WriterRuns is how many times BenchmarkWriter runs (0: skipped).
	WriterRuns int
	Streamers  []int // world sizes (default 10k and 100k)
	Rates      []int // changes per second under load (default 1k and 10k)
	Out        io.Writer
	Log        io.Writer // progress
}

// phases are the durations of a run's phases.
type phases struct {
	fresh  time.Duration // fresh deployment window (sessions missed)
	quiet  time.Duration // quiet-world CPU and request window
	load   time.Duration // each change rate
	writer int           // BenchmarkWriter runs
}

func (o Options) phases() phases {
	if o.Quick {
		return phases{fresh: 60 * time.Second, quiet: 20 * time.Second, load: 8 * time.Second, writer: o.WriterRuns}
	}
	// The quiet window is one poll interval: one round of requests.
	return phases{fresh: 90 * time.Second, quiet: pollInterval, load: 15 * time.Second, writer: o.WriterRuns}
}

// row is one line of the table.
type row struct{ figure, goal, value string }

// Run measures and prints the table.
func Run(ctx context.Context, o Options) error {
	if len(o.Streamers) == 0 {
		o.Streamers = []int{10_000, 100_000}
	}
	if len(o.Rates) == 0 {
		o.Rates = []int{1_000, 10_000}
	}
	for _, b := range []string{"kicksim", "kickcollector", "kickwriter"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("%w (run make build first)", err)
		}
	}
	if o.ProfileDir != "" {
		// Found missing only when the first profile is written, minutes in.
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return fmt.Errorf("profile directory: %w", err)
		}
	}
	started := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "kickbench %5.0fs load %s: %s\n", time.Since(started).Seconds(), loadAvg(), fmt.Sprintf(format, args...))
	}
	ph := o.phases()
	header := fmt.Sprintf("machine: %s; load average at start %s", machine(), loadAvg())

	var rows []row
	if ph.writer > 0 {
		logf("writer benchmark (go test, %d run(s))", ph.writer)
		r, err := writerBench(ctx, o.RepoDir, ph.writer)
		if err != nil {
			return err
		}
		rows = r
	}

	logf("starting PostgreSQL (fsync off, track_commit_timestamp on)")
	pg, err := pgtest.StartCluster()
	if err != nil {
		return fmt.Errorf("postgresql: %w", err)
	}
	defer pg.Close()
	if err := trackCommitTimes(ctx, pg); err != nil {
		return err
	}
	var pgVersion string
	if err := queryRow(ctx, pg.URL("postgres"), "SHOW server_version", &pgVersion); err != nil {
		return err
	}
	header += "; PostgreSQL " + pgVersion

	for _, n := range o.Streamers {
		r, err := runScale(ctx, o, ph, pg, n, logf)
		if err != nil {
			return fmt.Errorf("%d streamers: %w", n, err)
		}
		rows = append(rows, r...)
	}
	header += fmt.Sprintf("; load average at end %s; %s in all", loadAvg(), time.Since(started).Round(time.Second))
	printTable(o.Out, header, rows)
	return nil
}

func printTable(w io.Writer, header string, rows []row) {
	fmt.Fprintf(w, "\n%s\n\n| figure | goal | measured |\n|---|---|---|\n", header)
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.figure, r.goal, r.value)
	}
}

// writerBench runs BenchmarkWriter (the writer alone against PostgreSQL)
// and reports its batched rate and its ratio to one row per transaction.
func writerBench(ctx context.Context, repo string, runs int) ([]row, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkWriter$", "-benchtime", "1x",
		"-count", strconv.Itoa(runs), "./writer/internal/consumer/")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("BenchmarkWriter: %w\n%s", err, out)
	}
	rate := regexp.MustCompile(`([0-9.]+) batched-events/s`)
	ratio := regexp.MustCompile(`([0-9.]+) ratio`)
	var rates, ratios []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := rate.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			rates = append(rates, kilo(v))
		}
		if m := ratio.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			ratios = append(ratios, fmt.Sprintf("%.0f×", v))
		}
	}
	if len(rates) == 0 || len(ratios) == 0 {
		return nil, fmt.Errorf("BenchmarkWriter printed no figures:\n%s", out)
	}
	load := " (load " + loadAvg() + ")"
	return []row{
		{fmt.Sprintf("writer, batched events/s (`BenchmarkWriter`, %d run(s))", runs), "≥ 80k sustained", strings.Join(rates, " / ") + load},
		{"writer vs one row per transaction, same run", "≥ 30×", strings.Join(ratios, " / ")},
	}, nil
}

// trackCommitTimes turns track_commit_timestamp on (a restart is needed).
func trackCommitTimes(ctx context.Context, pg *pgtest.Cluster) error {
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "ALTER SYSTEM SET track_commit_timestamp = on")
	_ = conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("track_commit_timestamp: %w", err)
	}
	pg.Stop()
	return pg.Start()
}

func queryRow(ctx context.Context, url, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// sampler samples a process's RSS every second until stopped.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	min  int64
	max  int64
}

func sample(pid int) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if rss, _, err := memory(pid); err == nil && rss > 0 {
				if s.min == 0 || rss < s.min {
					s.min = rss
				}
				s.max = max(s.max, rss)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) end() (lo, hi int64) {
	close(s.stop)
	<-s.done
	return s.min, s.max
}

// readEnv reads kicksim's environment lines, without the slugs (the bench
// adds streamers through the API, as an operator would).
func readEnv(ctx context.Context, r io.Reader) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	env, err := proc.ReadEnv(rctx, bufio.NewReader(r), func(k string) bool { return k == "KICKMON_STREAMERS" })
	if err != nil {
		return nil, err
	}
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KICKMON_STREAMERS=") {
			out = append(out, kv)
		}
	}
	return out, nil
}
