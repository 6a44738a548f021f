// Package app is kickwriter's program: subcommands (run, the default;
// migrate; version), configuration, logging, and the daemon's wiring of
// store, consumer, confirmation refresher, metrics and systemd
// notifications.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kickmon/kickmon/proto/backoff"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/proto/profiling"
	"github.com/kickmon/kickmon/writer/internal/config"
	"github.com/kickmon/kickmon/writer/internal/confirm"
	"github.com/kickmon/kickmon/writer/internal/consumer"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
	"github.com/kickmon/kickmon/writer/internal/metrics"
	"github.com/kickmon/kickmon/writer/internal/retention"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/systemd"
)

// Version is the build version, set with -ldflags "-X …/app.Version=…".
var Version = "dev"

// ErrUsage marks command-line mistakes (exit status 2).
var ErrUsage = errors.New("usage")

// Exit statuses besides 0 and 1 (any other error).
const (
	ExitUsage = 2
	// ExitLogChanged: the collector's event log changed and
	// KICKMON_ON_LOG_CHANGE=stop (the unit does not restart on it).
	ExitLogChanged = 3
)

// ExitCode is the exit status for Run's error.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, consumer.ErrLogChanged):
		return ExitLogChanged
	}
	return 1
}

const usage = `Usage: kickwriter [run|migrate|version] [--env-file FILE]

  run       follow kickcollector's events and write them to PostgreSQL (default)
  migrate   apply the embedded schema migrations and exit
  version   print the version and the schema version this binary knows

Configuration comes from the environment (see KICKMON_* in design.md),
optionally from --env-file, and the database URL from KICKMON_DATABASE_URL
or the systemd credential database-url.
`

// Run runs kickwriter with args (without the program name). A cancelled
// ctx is a clean shutdown, not an error.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("kickwriter", flag.ContinueOnError)
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
		_, err := fmt.Fprintf(stdout, "kickwriter %s (schema version %d)\n", Version, store.LatestVersion())
		return err
	case "run", "migrate":
	default:
		return fmt.Errorf("%w: unknown command %q\n%s", ErrUsage, cmd, usage)
	}

	cfg, err := config.Load(func(k string) (string, bool) { v := getenv(k); return v, v != "" }, *envFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if cfg.AllowInsecure {
		log.Warn("KICKMON_ALLOW_INSECURE=true: a remote database without verified TLS is accepted")
		weak, _ := config.InsecureDatabaseHosts(cfg.DatabaseURL) // parsed by Load already
		for _, w := range weak {
			log.Warn("INSECURE DATABASE CONNECTION: " + w + "; anyone on the path can impersonate the server and read the password (use sslmode=verify-full)")
		}
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	if cmd == "migrate" {
		return migrate(ctx, cfg, log, stdout)
	}
	return daemon(ctx, cfg, log)
}

func migrate(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	st, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer st.Close()
	from, to, err := st.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", config.Redact(cfg.DatabaseURL), err)
	}
	if from == to {
		_, err = fmt.Fprintf(stdout, "schema kickmon is up to date (version %d)\n", to)
	} else {
		_, err = fmt.Fprintf(stdout, "schema kickmon migrated from version %d to %d\n", from, to)
	}
	return err
}

// daemon runs the writer until ctx ends, then drains.
func daemon(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	notify := systemd.New(log.With(logkeys.Component, "systemd"))
	dbName := config.Redact(cfg.DatabaseURL)
	log.Info("starting", logkeys.Version, Version, logkeys.Database, dbName, logkeys.Socket, cfg.Socket)

	st, err := store.Open(ctx, cfg.DatabaseURL, log.With(logkeys.Component, "store"))
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.NoOutbox {
		st.DisableOutbox()
		log.Info("KICKMON_NOTIFY_OUTBOX=false: notable events are not recorded in kickmon.notify_outbox")
	}
	if err := prepare(ctx, st, notify, log); err != nil || ctx.Err() != nil {
		return err
	}

	conn, err := kickapi.Dial(cfg.Socket)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	m := metrics.New()
	notify.Status("waiting for kickcollector at " + cfg.Socket)

	ready := make(chan struct{}) // closed once, by OnSubscribed
	c := consumer.New(conn, st, log.With(logkeys.Component, "consumer"), m, consumer.Options{
		BatchSize:       cfg.BatchSize,
		MaxBatch:        cfg.MaxBatch,
		Interval:        cfg.BatchInterval,
		StopOnLogChange: cfg.OnLogChange == config.OnLogChangeStop,
		OnSubscribed: func() {
			notify.Ready()
			close(ready)
			log.Info("ready: database migrated, subscribed to the collector's events")
		},
	})

	refresher := confirm.New(conn, st, log.With(logkeys.Component, "confirm"), m, confirm.Options{Interval: cfg.ConfirmInterval})

	aux, stopAux := context.WithCancel(ctx)
	defer stopAux()
	var wg sync.WaitGroup
	defer wg.Wait()
	var auxErr error
	// Beside the consumer, never holding it up: not part of READY or the watchdog.
	wg.Go(func() { refresher.Run(aux) })
	if cfg.PprofAddr != "" {
		wg.Go(func() {
			if err := profiling.Serve(aux, cfg.PprofAddr, log.With(logkeys.Component, "pprof")); err != nil {
				auxErr = err
				log.Error("pprof server failed; stopping", logkeys.Err, err)
				stopAux()
			}
		})
	}
	wg.Go(func() {
		retention.Run(aux, st, log.With(logkeys.Component, "retention"), retention.Options{Retention: cfg.EventsRetention})
	})
	if cfg.MetricsAddr != "" {
		wg.Go(func() {
			if err := metrics.Serve(aux, cfg.MetricsAddr, m, c.Healthy, log.With(logkeys.Component, "metrics")); err != nil {
				auxErr = err
				log.Error("metrics server failed; stopping", logkeys.Err, err)
				stopAux()
			}
		})
	}
	wg.Go(func() {
		select { // the watchdog runs from READY on
		case <-ready:
			notify.Watchdog(aux, c.Healthy)
		case <-aux.Done():
		}
	})
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		last := ""
		for {
			if s := StatusLine(c.Status(), cfg.Socket); s != last {
				notify.Status(s)
				last = s
			}
			select {
			case <-aux.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Go(func() {
		<-aux.Done()
		notify.Stopping()
		notify.Status("stopping: writing what is held")
	})

	err = c.Run(aux)
	stopAux()
	wg.Wait()
	if errors.Is(err, consumer.ErrLogChanged) {
		notify.Status("stopped (exit status 3): " + err.Error())
	}
	if err != nil {
		return err
	}
	return auxErr
}

// prepare pings the database and migrates it, retrying while PostgreSQL
// is unreachable (it may still be starting). A schema newer than this
// binary is fatal.
func prepare(ctx context.Context, st *store.Store, notify *systemd.Notifier, log *slog.Logger) error {
	b := backoff.Backoff{Policy: backoff.For(backoff.Local, 0)} // PostgreSQL on this machine, often still starting
	for {
		notify.Status("connecting to PostgreSQL")
		err := st.Ping(ctx)
		if err == nil {
			var from, to int
			from, to, err = st.Migrate(ctx)
			if err == nil {
				if from != to {
					log.Info("schema migrated", "from", from, "to", to)
				}
				return nil
			}
			if errors.Is(err, store.ErrSchemaTooNew) {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		notify.Status("waiting for PostgreSQL: " + err.Error())
		wait := b.Failed(time.Now())
		log.Warn("database not ready; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// StatusLine is the STATUS= line for systemctl status.
func StatusLine(s consumer.Status, socket string) string {
	var parts []string
	switch {
	case s.DBError != "":
		parts = append(parts, fmt.Sprintf("PostgreSQL unavailable since %s, retrying (the collector keeps the events): %s",
			s.DBErrorSince.Format(time.TimeOnly), s.DBError))
	case s.LastFlush.IsZero():
		parts = append(parts, "no flush yet")
	default:
		parts = append(parts, fmt.Sprintf("last flush %s (%d events, lag %s)", s.LastFlush.Format(time.TimeOnly), s.LastFlushSize, s.Lag.Round(time.Millisecond)))
	}
	parts = append(parts, fmt.Sprintf("cursor %d, %d waiting", s.Committed, s.Received-min(s.Received, s.Committed)))
	if !s.Subscribed {
		msg := "not subscribed to kickcollector at " + socket
		if s.CollectorError != "" {
			msg += ": " + s.CollectorError
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}
