// Package app is kicknotify's program: subcommands (run, the default;
// check; version), configuration, logging, and the daemon's wiring of
// River workers, the status socket, metrics and systemd notifications.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kickmon/kickmon/notify/internal/api"
	"github.com/kickmon/kickmon/notify/internal/config"
	"github.com/kickmon/kickmon/notify/internal/jobs"
	"github.com/kickmon/kickmon/notify/internal/logkeys"
	"github.com/kickmon/kickmon/notify/internal/metrics"
	"github.com/kickmon/kickmon/notify/internal/systemd"
	"github.com/kickmon/kickmon/notify/internal/targets"
	"github.com/kickmon/kickmon/proto/unixsock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Version is the build version, set with -ldflags "-X …/app.Version=…".
var Version = "dev"

// ErrUsage marks command-line mistakes (exit status 2).
var ErrUsage = errors.New("usage")

const usage = `Usage: kicknotify [run|check|version] [--env-file FILE]

  run       deliver the writer's notable events to the targets (default)
  check     validate the configuration and notify.yaml, then exit
  version   print the version

Configuration comes from the environment (KICKMON_DATABASE_URL or the
systemd credential database-url, KICKMON_NOTIFY_CONFIG, KICKMON_NOTIFY_SOCKET,
KICKMON_METRICS_ADDR, KICKMON_LOG_LEVEL), optionally from --env-file.
`

// Run runs kicknotify with args (without the program name). A cancelled
// ctx is a clean shutdown, not an error.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("kicknotify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	envFile := fs.String("env-file", "", "read environment variables from `FILE` (the real environment wins)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = io.WriteString(stdout, usage)
			return nil
		}
		return fmt.Errorf("%w: %v\n%s", ErrUsage, err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q\n%s", ErrUsage, fs.Arg(0), usage)
	}
	switch cmd {
	case "version":
		_, err := fmt.Fprintf(stdout, "kicknotify %s\n", Version)
		return err
	case "run", "check":
	default:
		return fmt.Errorf("%w: unknown command %q\n%s", ErrUsage, cmd, usage)
	}
	cfg, err := config.Load(func(k string) (string, bool) { v := getenv(k); return v, v != "" }, *envFile)
	if err != nil {
		return err
	}
	if cmd == "check" {
		_, err := fmt.Fprintf(stdout, "configuration valid: %d target(s) in %s\n", len(cfg.Targets), cfg.ConfigPath)
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return daemon(ctx, cfg, log)
}

func daemon(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	notify := systemd.New(log.With(logkeys.Component, "systemd"))
	log.Info("starting", logkeys.Version, Version, logkeys.Database, config.Redact(cfg.DatabaseURL),
		logkeys.Config, cfg.ConfigPath, logkeys.Targets, len(cfg.Targets))
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database pool: invalid KICKMON_DATABASE_URL %s", config.Redact(cfg.DatabaseURL))
	}
	defer pool.Close()
	if err := waitForQueue(ctx, pool, notify, log); err != nil || ctx.Err() != nil {
		return err
	}
	m := metrics.New()
	n, err := jobs.New(pool, jobs.Options{
		Targets:  cfg.Targets,
		Sender:   &targets.Sender{Client: &http.Client{Timeout: cfg.Timeout}, UserAgent: "kicknotify/" + Version},
		Timeout:  cfg.Timeout,
		Log:      log.With(logkeys.Component, "jobs"),
		RiverLog: log.With(logkeys.Component, "river"),
		Metrics:  m,
	})
	if err != nil {
		return err
	}
	lis, err := unixsock.Listen(cfg.Socket, "kicknotify")
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		_ = lis.Close()
		return err
	}
	healthy := func() error {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := pool.Ping(hctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		return n.Alive(time.Now())
	}

	aux, stopAux := context.WithCancel(ctx)
	defer stopAux()
	var wg sync.WaitGroup
	var auxErr error
	fail := func(what string, err error) {
		if err != nil && aux.Err() == nil {
			auxErr = fmt.Errorf("%s: %w", what, err)
			log.Error(what+" failed; stopping", logkeys.Err, err)
			stopAux()
		}
	}
	wg.Go(func() { fail("status socket", api.Serve(aux, lis, n, log.With(logkeys.Component, "api"))) })
	if cfg.MetricsAddr != "" {
		wg.Go(func() {
			fail("metrics server", metrics.Serve(aux, cfg.MetricsAddr, m, healthy, log.With(logkeys.Component, "metrics")))
		})
	}
	wg.Go(func() { notify.Watchdog(aux, healthy) })
	wg.Go(func() { statusLines(aux, n, notify, m) })
	notify.Ready()
	log.Info("ready: delivering notifications", logkeys.Socket, cfg.Socket)
	<-aux.Done()
	notify.Stopping()
	notify.Status("stopping: finishing running deliveries")
	n.Stop(10 * time.Second)
	stopAux()
	wg.Wait()
	return auxErr
}

// waitForQueue waits until PostgreSQL answers and River's migrations are
// all applied (kickwriter applies them when it migrates, possibly while
// this runs).
func waitForQueue(ctx context.Context, pool *pgxpool.Pool, notify *systemd.Notifier, log *slog.Logger) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: jobs.Schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	wait := 100 * time.Millisecond
	for {
		res, err := m.Validate(ctx, nil)
		if err == nil && res.OK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("the queue's tables in schema %s are not all there yet (kickwriter creates them when it migrates): %s",
				jobs.Schema, strings.Join(res.Messages, "; "))
		}
		if ctx.Err() != nil {
			return nil
		}
		notify.Status("waiting for the queue: " + err.Error())
		log.Warn("queue not ready; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// statusLines keeps systemctl status's line and the backlog gauges current
// (the outbox's are set by Status itself).
func statusLines(ctx context.Context, n *jobs.Notifier, notify *systemd.Notifier, m *metrics.Metrics) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	last := ""
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := n.Status(qctx)
		cancel()
		var line string
		if err != nil {
			line = "cannot read the queue: " + err.Error()
		} else {
			var pending, retrying, failed int64
			m.SetBacklog("", "pending", st.GetEventsPending())
			for _, t := range st.GetTargets() {
				pending, retrying, failed = pending+t.GetPending(), retrying+t.GetRetrying(), failed+t.GetFailed()
				m.SetBacklog(t.GetName(), "pending", t.GetPending())
				m.SetBacklog(t.GetName(), "retrying", t.GetRetrying())
			}
			line = fmt.Sprintf("%d target%s; %d events to fan out, %d deliveries pending, %d retrying, %d failed in 24 h",
				len(st.GetTargets()), plural(len(st.GetTargets())), st.GetEventsPending(), pending, retrying, failed)
		}
		if line != last && ctx.Err() == nil {
			notify.Status(line)
			last = line
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// plural is the plural ending of a count ("1 target", "2 targets").
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
