// Package metrics owns kicknotify's Prometheus metrics and its /metrics and
// /healthz endpoints: deliveries by target and outcome, the latency from
// kickmon seeing a change to the target accepting its message, the queue's
// backlog and the outbox's.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kickmon/kickmon/notify/internal/logkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a delivery attempt.
const (
	OutcomeDelivered   = "delivered"    // the target accepted it
	OutcomeRetry       = "retry"        // failed; retried with backoff
	OutcomeRateLimited = "rate_limited" // 429; retried when the target said
	OutcomeFailed      = "failed"       // refused by the target; given up
	OutcomeQuiet       = "quiet"        // not sent: the target's quiet hours
)

// Metrics is kicknotify's metric set. A nil *Metrics ignores everything.
type Metrics struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	backlog    *prometheus.GaugeVec
	outboxRows prometheus.Gauge
	outboxAge  prometheus.Gauge
	outboxMove prometheus.Counter
}

// New registers the metrics on a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickmon_notify_deliveries_total", Help: "Delivery attempts by target and outcome (delivered, retry, rate_limited, failed, quiet).",
		}, []string{"target", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kickmon_notify_latency_seconds",
			Help:    "From kickmon observing a change to the target accepting its message.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800},
		}, []string{"target"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kickmon_notify_backlog", Help: "Jobs waiting, by target (\"\" for events not yet fanned out) and state (pending, retrying); refreshed every 5 s.",
		}, []string{"target", "state"}),
		outboxRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_notify_outbox_rows", Help: "Notable events the writer recorded in kickmon.notify_outbox, not yet moved into the queue; refreshed every 5 s.",
		}),
		outboxAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kickmon_notify_outbox_oldest_seconds", Help: "Age of the oldest kickmon.notify_outbox row (0 when empty); refreshed every 5 s.",
		}),
		outboxMove: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickmon_notify_outbox_moved_total", Help: "kickmon.notify_outbox rows moved into the queue as fan-out jobs.",
		}),
	}
	m.reg.MustRegister(m.deliveries, m.latency, m.backlog, m.outboxRows, m.outboxAge, m.outboxMove, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Delivered counts an attempt's outcome; latency counts when delivered.
func (m *Metrics) Delivered(target, outcome string, latency time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(target, outcome).Inc()
	if outcome == OutcomeDelivered {
		m.latency.WithLabelValues(target).Observe(latency.Seconds())
	}
}

// SetBacklog sets the number of jobs of target ("" for events) in state.
func (m *Metrics) SetBacklog(target, state string, n int64) {
	if m == nil {
		return
	}
	m.backlog.WithLabelValues(target, state).Set(float64(n))
}

// SetOutbox sets the outbox's backlog: rows, and the oldest one's age.
func (m *Metrics) SetOutbox(rows int64, oldest time.Duration) {
	if m == nil {
		return
	}
	m.outboxRows.Set(float64(rows))
	m.outboxAge.Set(oldest.Seconds())
}

// OutboxMoved counts outbox rows moved into the queue.
func (m *Metrics) OutboxMoved(n int) {
	if m == nil {
		return
	}
	m.outboxMove.Add(float64(n))
}

// Serve serves /metrics and /healthz (200 while healthy returns nil) on
// addr until ctx ends.
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
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
