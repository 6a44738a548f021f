// Package metrics owns kickwriter's Prometheus metrics and its /metrics and
// /healthz endpoints. The consumer feeds counters after each flush; gauges
// describe the current lag and connection state.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kickmon/kickmon/writer/internal/logkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the writer's metric set. A nil *Metrics ignores everything.
type Metrics struct {
	reg         *prometheus.Registry
	batches     prometheus.Counter
	flushErrors prometheus.Counter
	events      *prometheus.CounterVec
	rows        prometheus.Counter
	lost        prometheus.Counter
	flush       prometheus.Histogram
	batchSize   prometheus.Histogram
	lagEvents   prometheus.Gauge
	lagSeconds  prometheus.Gauge
	cursor      prometheus.Gauge
	dbUp        prometheus.Gauge
	connected   prometheus.Gauge
	confirms    *prometheus.CounterVec
	confirmRows prometheus.Counter
	confirmLast prometheus.Gauge
	confirmTime prometheus.Histogram
}

// Outcomes of a confirmation refresh (ObserveConfirm).
const (
	ConfirmOK        = "ok"        // written (possibly 0 rows: nothing new)
	ConfirmBehind    = "behind"    // the database did not yet reflect the list; nothing written
	ConfirmCollector = "collector" // ListStreamers failed
	ConfirmDatabase  = "database"  // the statement failed
)

// New registers the metrics on a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickmon_writer_batches_total", Help: "Flushes committed to PostgreSQL.",
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickmon_writer_flush_errors_total", Help: "Flush attempts that failed and were retried (database unreachable, timeouts).",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickmon_writer_events_total", Help: "Events handled, by outcome: applied, skipped (already applied) or quarantined.",
		}, []string{"outcome"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickmon_writer_rows_total", Help: "Rows inserted or updated in the kickmon schema.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickmon_writer_lost_events_total", Help: "Seqs the collector dropped before they were stored (recorded in coverage_gaps).",
		}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kickmon_writer_flush_duration_seconds", Help: "Time to commit one flush, retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kickmon_writer_batch_events", Help: "Events per flush.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		lagEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_writer_lag_events", Help: "Events received from the collector but not yet committed.",
		}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_writer_lag_seconds", Help: "At the last commit, time from kickmon observing its newest event to the commit.",
		}),
		cursor: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_writer_cursor_seq", Help: "The last committed seq (kickmon.writer_cursor).",
		}),
		dbUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_writer_database_up", Help: "1 while the last database operation succeeded.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_writer_collector_connected", Help: "1 while subscribed to the collector's events.",
		}),
		confirms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickmon_writer_confirm_refreshes_total", Help: "Refreshes of streamers.last_confirmed_at from the collector's watch list, by outcome: ok, behind (the database did not yet reflect the list), collector or database (failed).",
		}, []string{"outcome"}),
		confirmRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickmon_writer_confirm_rows_total", Help: "streamers rows whose confirmation times a refresh moved forward.",
		}),
		confirmLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_writer_confirm_last_success_timestamp_seconds", Help: "Unix time of the last successful confirmation refresh (0: none yet).",
		}),
	}
	m.confirmTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kickmon_writer_confirm_duration_seconds",
		Help:    "Time one confirmation refresh attempt took (the collector's list and the statement), whatever its outcome.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	})
	for _, o := range []string{ConfirmOK, ConfirmBehind, ConfirmCollector, ConfirmDatabase} {
		m.confirms.WithLabelValues(o)
	}
	m.reg.MustRegister(m.batches, m.flushErrors, m.events, m.rows, m.lost, m.flush, m.batchSize,
		m.lagEvents, m.lagSeconds, m.cursor, m.dbUp, m.connected, m.confirms, m.confirmRows, m.confirmLast, m.confirmTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics live.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Flush records one committed flush.
type Flush struct {
	Events, Applied, Skipped, Quarantined int
	Lost                                  uint64
	Rows                                  int64
	Duration                              time.Duration
	Cursor                                uint64
	Lag                                   time.Duration // newest event's observation to commit
}

// ObserveFlush records a committed flush.
func (m *Metrics) ObserveFlush(f Flush) {
	if m == nil {
		return
	}
	m.batches.Inc()
	m.events.WithLabelValues("applied").Add(float64(f.Applied))
	m.events.WithLabelValues("skipped").Add(float64(f.Skipped))
	m.events.WithLabelValues("quarantined").Add(float64(f.Quarantined))
	m.rows.Add(float64(f.Rows))
	m.lost.Add(float64(f.Lost))
	m.flush.Observe(f.Duration.Seconds())
	m.batchSize.Observe(float64(f.Events))
	m.cursor.Set(float64(f.Cursor))
	if f.Lag > 0 {
		m.lagSeconds.Set(f.Lag.Seconds())
	}
	m.dbUp.Set(1)
}

// FlushFailed records a failed flush attempt (to be retried).
func (m *Metrics) FlushFailed() {
	if m == nil {
		return
	}
	m.flushErrors.Inc()
	m.dbUp.Set(0)
}

// SetLag sets the number of received, uncommitted events.
func (m *Metrics) SetLag(events int) {
	if m != nil {
		m.lagEvents.Set(float64(events))
	}
}

// SetConnected records whether the writer is subscribed to the collector.
func (m *Metrics) SetConnected(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// ObserveConfirm records one confirmation refresh: its outcome (Confirm*)
// and, for ConfirmOK, the rows it moved.
func (m *Metrics) ObserveConfirm(outcome string, rows int64) {
	if m == nil {
		return
	}
	m.confirms.WithLabelValues(outcome).Inc()
	if outcome == ConfirmOK {
		m.confirmRows.Add(float64(rows))
		m.confirmLast.SetToCurrentTime()
	}
}

// ConfirmDuration records how long one confirmation refresh attempt took.
func (m *Metrics) ConfirmDuration(d time.Duration) {
	if m != nil {
		m.confirmTime.Observe(d.Seconds())
	}
}

// Serve serves /metrics and /healthz (200 while healthy returns nil, else
// 503 with the reason) on addr until ctx ends. The listener is bound before
// Serve returns its first error, so a bad address fails at start.
func Serve(ctx context.Context, addr string, m *Metrics, healthy func() error, log *slog.Logger) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	srv := server(mux)
	log.Info("serving metrics", logkeys.Addr, lis.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	}
}

// idleTimeout is how long a kept-alive connection may sit unused (a var:
// tests shorten it).
var idleTimeout = 2 * time.Minute

// server is the metrics HTTP server. A scrape is small and local, so a
// client that dribbles its request, stalls reading the answer or parks
// idle connections is cut off instead of holding them forever.
func server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       idleTimeout,
	}
}
