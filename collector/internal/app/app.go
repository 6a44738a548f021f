// Package app wires kickcollector together: configuration, the Kick
// sources, the engine, the spool, the gRPC server, metrics and systemd
// notifications, and shuts them down in order.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kickmon/kickmon/collector/internal/config"
	"github.com/kickmon/kickmon/collector/internal/engine"
	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/metrics"
	"github.com/kickmon/kickmon/collector/internal/monitor"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	"github.com/kickmon/kickmon/collector/internal/rpc"
	"github.com/kickmon/kickmon/collector/internal/sdnotify"
	"github.com/kickmon/kickmon/collector/internal/spool"
	"github.com/kickmon/kickmon/collector/internal/webhook"
	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/profiling"
	"github.com/kickmon/kickmon/proto/unixsock"
)

// Version is the collector's version, set at build time with -ldflags -X.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// pollInFlight is how many channels requests the poller keeps in flight:
// a 100k-streamer round needs 2000 requests a minute, which one request at
// a time (100–200 ms each against Kick) cannot do. The budget still caps
// the rate.
const pollInFlight = 4

// stallLimit is how long the main loop may go without a turn before the
// watchdog stops pinging and /healthz fails.
const stallLimit = 20 * time.Second

// Run runs kickcollector until ctx ends (a clean shutdown, not an error).
func Run(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kickcollector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", "", "read settings from this env file (the environment wins)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, "kickcollector", version())
		return err
	}
	cfg, err := config.Load(lookup, *envFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	if cfg.MemoryLimit > 0 {
		// A soft limit: the heap grows to twice what is live (GOGC) only
		// while that stays under it (issue 13: 600 MB of RSS at 100k
		// streamers for 200 MB live).
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	return run(ctx, cfg, log)
}

// collector is the running daemon's parts.
type collector struct {
	cfg      *config.Config
	log      *slog.Logger
	started  time.Time
	client   *kickrest.Client
	poller   *poller.Poller
	realtime *realtime.Manager // nil when KICK_REALTIME=off
	hooks    *webhook.Handler
	repairer *webhook.Repairer // nil when webhooks are off
	hookWake chan struct{}     // asks the webhook repairer to subscribe new streamers now
	engine   *engine.Engine
	spool    *spool.Spool
	server   *rpc.Server
	metrics  *metrics.Metrics
	notify   *sdnotify.Notifier
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
	c := &collector{cfg: cfg, log: log, started: time.Now(), notify: sdnotify.New(log)}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	c.spool, err = spool.Open(cfg.SpoolPath(), spool.Options{MaxBytes: cfg.SpoolMaxBytes, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.spool.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	kickrest.Version = version()
	c.metrics = metrics.New(c.statusSnapshot) // gauges read the parts at scrape time
	c.client, err = kickrest.New(kickrest.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		AuthURL: cfg.AuthURL, APIURL: cfg.APIURL, AllowInsecure: cfg.AllowInsecure,
		Budget: cfg.APIBudget, Logger: log, OnRequest: c.metrics.APIRequest,
	})
	if err != nil {
		return err
	}
	in := make(chan observation.Observation, 8192)
	c.poller, err = poller.New(c.client, poller.Options{Interval: cfg.PollInterval, Budget: cfg.APIBudget, InFlight: pollInFlight, Out: in, Logger: log})
	if err != nil {
		return err
	}
	c.metrics.WatchPoller(c.poller.Status)
	eo := engine.Options{
		Monitor: monitor.New(monitor.Config{OfflineGrace: cfg.OfflineGrace}),
		Spool:   c.spool, Poller: c.poller, In: in,
		Resolve: c.resolve,
		Logger:  log.With(logkeys.Component, "engine"),
	}
	if cfg.Realtime != realtime.ModeOff {
		c.realtime, err = newRealtime(cfg, in, c.poller, log)
		if err != nil {
			return err
		}
		eo.Pusher = c.realtime
		c.metrics.Realtime(c.realtime.Status)
	}
	if cfg.WebhookAddr != "" {
		c.hookWake = make(chan struct{}, 1)
		c.hooks, err = webhook.NewHandler(webhook.Options{Out: in, Keys: c.client, Logger: log})
		if err != nil {
			return err
		}
		c.metrics.WatchWebhooks(c.hooks.Stats)
	}
	eo.Committed = c.metrics.ObserveEvents
	eo.Quarantined = c.metrics.Quarantined
	c.engine = engine.New(eo)
	c.server, err = rpc.New(rpc.Options{Backend: c, Spool: c.spool, AdminGroup: cfg.AdminGroup, Logger: log})
	if err != nil {
		return err
	}
	lis, err := unixsock.Listen(cfg.Socket, "kickcollector")
	if err != nil {
		return err
	}

	// Everything below runs until ctx ends, or one part fails. The engine
	// has a context of its own: at shutdown the sources stop first, then
	// the engine commits what they had already queued, so nothing seen
	// (e.g. a webhook already answered 200) is dropped.
	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	engCtx, engCancel := context.WithCancel(context.Background())
	defer engCancel()
	var wg sync.WaitGroup
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	engErr := make(chan error, 1)
	go func() {
		err := c.engine.Run(engCtx)
		if err != nil {
			err = fmt.Errorf("engine: %w", err)
			cancel(err)
		}
		engErr <- err
	}()
	goRun("poller", c.poller.Run)
	if c.realtime != nil {
		goRun("realtime", c.realtime.Run)
	}
	if c.hooks != nil {
		var tlsFiles *webhook.TLSFiles
		if cfg.WebhookTLSCert != "" {
			tlsFiles = &webhook.TLSFiles{Cert: cfg.WebhookTLSCert, Key: cfg.WebhookTLSKey}
		}
		goRun("webhooks", func(ctx context.Context) error { return c.hooks.ListenAndServe(ctx, cfg.WebhookAddr, tlsFiles) })
		c.repairer = &webhook.Repairer{API: c.client, Watched: c.watchedIDs, Wake: c.hookWake, Logger: log}
		goRun("webhook repair", c.repairer.Run)
	}
	if cfg.PprofAddr != "" {
		goRun("pprof", func(ctx context.Context) error { return profiling.Serve(ctx, cfg.PprofAddr, log) })
	}
	if cfg.MetricsAddr != "" {
		goRun("metrics", func(ctx context.Context) error { return metrics.Serve(ctx, cfg.MetricsAddr, c.metrics, c.healthy, log) })
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- c.server.Serve(lis) }()

	if err := c.waitEngine(ctx, runCtx); err != nil {
		cancel(err)
	} else {
		c.notify.Ready()
		log.Info("kickcollector serving", logkeys.Addr, cfg.Socket, logkeys.Path, cfg.SpoolPath(), logkeys.Version, version())
		goRun("watchdog", func(ctx context.Context) error {
			c.notify.Watchdog(ctx, func() error { return c.engine.Healthy(stallLimit) })
			return nil
		})
		goRun("status", c.statusLoop)
		if len(cfg.Streamers) > 0 {
			goRun("initial streamers", c.addInitial)
		}
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		cancel(fmt.Errorf("grpc server: %w", err))
	case <-runCtx.Done():
	}
	c.notify.Stopping()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := c.server.Shutdown(sctx); err != nil {
		log.Warn("grpc shutdown", logkeys.Err, err)
	}
	scancel()
	cause := context.Cause(runCtx)
	cancel(nil)
	wg.Wait()
	engCancel()
	if err := <-engErr; err != nil && (cause == nil || errors.Is(cause, context.Canceled)) {
		cause = err // failed while committing what the sources had queued
	}
	if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// waitEngine waits until the engine has restored the watch list, a part
// failed (runCtx) or the process is asked to stop (ctx).
func (c *collector) waitEngine(ctx, runCtx context.Context) error {
	for c.engine.Healthy(stallLimit) != nil {
		select {
		case <-ctx.Done():
			return context.Canceled
		case <-runCtx.Done():
			return context.Cause(runCtx)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// healthy backs /healthz: the loop turns and at least one source works. A
// realtime provider subscribed to no channel counts only while nobody is
// watched: it answers "ok" but sees no one; webhooks never count.
func (c *collector) healthy() error {
	if err := c.engine.Healthy(stallLimit); err != nil {
		return err
	}
	st := c.statusSnapshot()
	watched := c.poller.Status().Streamers
	for _, s := range st.GetSources() {
		if s.GetHealth() != healthOK && s.GetHealth() != healthDegraded {
			continue
		}
		if isRealtime(s.GetSource()) && s.GetStreamersCovered() == 0 && watched > 0 {
			continue
		}
		if s.GetSource() == kickmonv1.Source_SOURCE_WEBHOOK {
			continue // a listening receiver proves nothing: Kick may deliver nothing
		}
		return nil
	}
	return errors.New("no source works")
}

// addInitial adds KICKMON_STREAMERS, retrying slugs that failed for
// reasons other than being invalid or unknown (Kick unreachable at start).
func (c *collector) addInitial(ctx context.Context) error {
	pending := c.cfg.Streamers
	// Kick unreachable at start: the shared policy for Kick's API.
	b := backoff.Backoff{Policy: backoff.For(backoff.Transient, c.cfg.PollInterval)}
	for len(pending) > 0 {
		var ok []poller.Resolution
		var retry []string
		for _, r := range c.resolve(ctx, pending) {
			switch {
			case r.Err == nil:
				ok = append(ok, r)
			case isPermanent(r.Err):
				c.log.Error("KICKMON_STREAMERS: cannot add streamer", logkeys.Slug, r.Slug, logkeys.Err, r.Err)
			default:
				c.log.Warn("KICKMON_STREAMERS: will retry", logkeys.Slug, r.Slug, logkeys.Err, r.Err)
				retry = append(retry, r.Slug)
			}
		}
		if len(ok) > 0 {
			if _, err := c.engine.AddResolved(ctx, ok, 0); err != nil {
				return err
			}
			c.wakeHooks()
			c.log.Info("KICKMON_STREAMERS added", logkeys.Count, len(ok))
		}
		pending = retry
		if len(pending) == 0 {
			break
		}
		if !backoff.Sleep(ctx, b.Failed(time.Now())) {
			return nil
		}
	}
	return nil
}
