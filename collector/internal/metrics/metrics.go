// Package metrics owns kickcollector's Prometheus metrics and its /metrics
// and /healthz endpoints. Counters are fed by the engine; gauges are read
// from the collector's status at scrape time, so they can never drift.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/webhook"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the collector's metric set.
type Metrics struct {
	reg              *prometheus.Registry
	events           *prometheus.CounterVec
	detectionLatency *prometheus.HistogramVec
	apiRequests      *prometheus.CounterVec
	quarantined      *prometheus.CounterVec
}

// New registers the metrics; status is called at each scrape for gauges.
func New(status func() *kickmonv1.CollectorStatus) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickmon_collector_events_total",
			Help: "Events committed to the spool, by kind and the source that saw the change first.",
		}, []string{"kind", "source"}),
		detectionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kickmon_collector_detection_latency_seconds",
			Help:    "Time from Kick's time of a start or end to kickmon seeing it, by source.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300},
		}, []string{"source"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickmon_collector_api_requests_total",
			Help: "Requests to Kick's official API, by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickmon_collector_events_quarantined_total",
			Help: "Events dropped because they could not be encoded for the spool (logged), by kind.",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.events, m.detectionLatency, m.apiRequests, m.quarantined,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statusCollector{status: status})
	return m
}

// Registry is where the metrics live (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveEvents counts committed events and their detection latency.
func (m *Metrics) ObserveEvents(events []*kickmonv1.Event) {
	for _, e := range events {
		kind, source := Name(e.GetKind().String()), Name(e.GetSource().String())
		m.events.WithLabelValues(kind, source).Inc()
		switch e.GetKind() {
		case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
			if e.GetKickTime() != nil && e.GetObservedAt() != nil {
				if d := e.GetObservedAt().AsTime().Sub(e.GetKickTime().AsTime()); d >= 0 {
					m.detectionLatency.WithLabelValues(source).Observe(d.Seconds())
				}
			}
		}
	}
}

// Quarantined counts one event that could not be encoded.
func (m *Metrics) Quarantined(e *kickmonv1.Event) {
	m.quarantined.WithLabelValues(Name(e.GetKind().String())).Inc()
}

// APIRequest counts one request to Kick's API.
func (m *Metrics) APIRequest(endpoint, outcome string) {
	m.apiRequests.WithLabelValues(endpoint, outcome).Inc()
}

// Name strips a proto enum prefix: EVENT_KIND_STREAM_STARTED → STREAM_STARTED,
// SOURCE_POLL → poll.
func Name(enum string) string {
	for _, p := range []string{"EVENT_KIND_", "HEALTH_", "LIVE_STATE_"} {
		if strings.HasPrefix(enum, p) {
			return strings.TrimPrefix(enum, p)
		}
	}
	return strings.ToLower(strings.TrimPrefix(enum, "SOURCE_"))
}

var (
	descStreamers = prometheus.NewDesc("kickmon_collector_streamers", "Watched streamers.", nil, nil)
	descLive      = prometheus.NewDesc("kickmon_collector_streamers_live", "Watched streamers that are live.", nil, nil)
	descSource    = prometheus.NewDesc("kickmon_collector_source_up", "1 if the source works (OK), else 0.", []string{"source", "health"}, nil)
	descSockets   = prometheus.NewDesc("kickmon_collector_pusher_sockets", "Realtime sockets (Pusher or Centrifugo) by state.", []string{"state"}, nil)
	descBudget    = prometheus.NewDesc("kickmon_collector_api_budget_per_minute", "Configured API request budget.", nil, nil)
	descUsed      = prometheus.NewDesc("kickmon_collector_api_requests_last_minute", "API requests sent in the last minute.", nil, nil)
	descLimited   = prometheus.NewDesc("kickmon_collector_api_rate_limited_total", "429 answers from Kick since start.", nil, nil)
	descToken     = prometheus.NewDesc("kickmon_collector_token_valid", "1 while a valid OAuth token is held.", nil, nil)
	descSpoolSize = prometheus.NewDesc("kickmon_collector_spool_bytes", "Spool size in bytes.", nil, nil)
	descSpoolSeq  = prometheus.NewDesc("kickmon_collector_spool_seq", "Spool sequence numbers (first retained, last written, acked by the writer).", []string{"which"}, nil)
	descWatchers  = prometheus.NewDesc("kickmon_collector_watchers", "Open WatchEvents streams.", nil, nil)
	descSpoolMax  = prometheus.NewDesc("kickmon_collector_spool_max_bytes", "Spool retention bound (KICKMON_SPOOL_MAX_BYTES); events are dropped as gaps above it.", nil, nil)
	descLagSeq    = prometheus.NewDesc("kickmon_collector_writer_lag_events", "Events written to the spool that the writer has not acknowledged yet.", nil, nil)
	descLagTime   = prometheus.NewDesc("kickmon_collector_writer_lag_seconds", "How long the oldest unacknowledged event has waited for the writer (0 when the writer is caught up).", nil, nil)
	descRTBlind   = prometheus.NewDesc("kickmon_collector_realtime_streamers_blind", "Watched streamers the realtime feed cannot see.", nil, nil)
)

type statusCollector struct {
	status func() *kickmonv1.CollectorStatus
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamers, descLive, descSource, descSockets, descBudget, descUsed, descLimited, descToken, descSpoolSize, descSpoolSeq, descWatchers, descRTBlind, descSpoolMax, descLagSeq, descLagTime} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	if st == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descStreamers, float64(st.GetStreamers()))
	gauge(descLive, float64(st.GetLive()))
	for _, s := range st.GetSources() {
		up := 0.0
		if s.GetHealth() == kickmonv1.Health_HEALTH_OK {
			up = 1
		}
		gauge(descSource, up, Name(s.GetSource().String()), strings.ToLower(Name(s.GetHealth().String())))
	}
	byState := map[string]int{}
	for _, s := range st.GetSockets() {
		byState[s.GetState()]++
	}
	for state, n := range byState {
		gauge(descSockets, float64(n), state)
	}
	gauge(descBudget, float64(st.GetBudget().GetRequestsPerMinute()))
	gauge(descUsed, float64(st.GetBudget().GetUsedLastMinute()))
	ch <- prometheus.MustNewConstMetric(descLimited, prometheus.CounterValue, float64(st.GetBudget().GetRateLimitedTotal()))
	valid := 0.0
	if st.GetToken().GetValid() {
		valid = 1
	}
	gauge(descToken, valid)
	sp := st.GetSpool()
	gauge(descSpoolSize, float64(sp.GetSizeBytes()))
	gauge(descSpoolSeq, float64(sp.GetFirstSeq()), "first")
	gauge(descSpoolSeq, float64(sp.GetLastSeq()), "last")
	gauge(descSpoolSeq, float64(sp.GetAckedSeq()), "acked")
	gauge(descWatchers, float64(st.GetWatchers()))
	if rt := st.GetRealtime(); rt != nil {
		gauge(descRTBlind, float64(rt.GetStreamersBlind()))
	}
	gauge(descSpoolMax, float64(sp.GetMaxBytes()))
	lagSeq, lagTime := writerLag(sp, time.Now())
	gauge(descLagSeq, float64(lagSeq))
	gauge(descLagTime, lagTime.Seconds())
}

// writerLag is how far the writer trails the spool, in events and in time:
// since the oldest unacknowledged event was observed, or, where the spool
// does not say, since the writer's last acknowledgement (an upper bound).
func writerLag(sp *kickmonv1.SpoolStatus, now time.Time) (uint64, time.Duration) {
	if sp.GetLastSeq() <= sp.GetAckedSeq() {
		return 0, 0
	}
	since := sp.GetOldestUnackedAt()
	if since == nil {
		since = sp.GetAckedAt()
	}
	var d time.Duration
	if since != nil {
		d = max(now.Sub(since.AsTime()), 0)
	}
	return sp.GetLastSeq() - sp.GetAckedSeq(), d
}

// Serve serves /metrics and /healthz on addr until ctx ends. /healthz
// answers 503 with the reason while healthy returns an error.
func Serve(ctx context.Context, addr string, m *Metrics, healthy func() error, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	return serve(ctx, ln, m, healthy, log)
}

func serve(ctx context.Context, ln net.Listener, m *Metrics, healthy func() error, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := server(mux)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("metrics listening", logkeys.Addr, ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
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

var descWebhook = prometheus.NewDesc("kickmon_collector_webhook_deliveries_total",
	"Webhook deliveries by outcome: accepted, duplicate, ignored (other events), or rejected (bad_request, stale, bad_signature, too_large).",
	[]string{"outcome"}, nil)

// WatchWebhooks exports the webhook receiver's counters, read at each
// scrape (rejections are logged at debug only, so these are what shows an
// attack or a misconfiguration).
func (m *Metrics) WatchWebhooks(stats func() webhook.Stats) {
	m.reg.MustRegister(webhookCollector(stats))
}

type webhookCollector func() webhook.Stats

func (webhookCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWebhook }

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	for outcome, n := range map[string]int64{
		"accepted": s.Accepted, "duplicate": s.Duplicates, "ignored": s.Ignored,
		"bad_request": s.BadRequest, "stale": s.Stale, "bad_signature": s.BadSig, "too_large": s.TooLarge,
	} {
		ch <- prometheus.MustNewConstMetric(descWebhook, prometheus.CounterValue, float64(n), outcome)
	}
}

var (
	descPollRequests = prometheus.NewDesc("kickmon_collector_poll_requests_total",
		"Requests the poller sent, by what made them go: round (every streamer once per interval, ⌈N/50⌉), or extra spent on purpose: check (out-of-turn), uncovered (streamers without realtime coverage), livestreams (channel ids).",
		[]string{"reason"}, nil)
	descPollRefreshes = prometheus.NewDesc("kickmon_collector_poll_refreshes_total",
		"Streamers the poller asked for, by why: round, check or uncovered.", []string{"reason"}, nil)
	descPollUncovered = prometheus.NewDesc("kickmon_collector_poll_uncovered_period_seconds",
		"How often each streamer without a channel id is refreshed (0: only by the rounds); a session shorter than this, of a streamer never seen live, can be missed.",
		nil, nil)
	descPollUncoveredN = prometheus.NewDesc("kickmon_collector_poll_uncovered_streamers",
		"Watched streamers without a channel id (no realtime coverage), which the poller alone can see.", nil, nil)
)

// WatchPoller exports the poller's counters by reason, read at each scrape
// (poller.Status is cheap: it keeps its counts as it goes).
func (m *Metrics) WatchPoller(status func() poller.Status) {
	m.reg.MustRegister(pollerCollector(status))
}

type pollerCollector func() poller.Status

func (pollerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPollRequests
	ch <- descPollRefreshes
	ch <- descPollUncovered
	ch <- descPollUncoveredN
}

func (c pollerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	for reason, n := range s.RequestsBy {
		ch <- prometheus.MustNewConstMetric(descPollRequests, prometheus.CounterValue, float64(n), reason)
	}
	for reason, n := range s.RefreshesBy {
		ch <- prometheus.MustNewConstMetric(descPollRefreshes, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descPollUncovered, prometheus.GaugeValue, s.UncoveredEvery.Seconds())
	ch <- prometheus.MustNewConstMetric(descPollUncoveredN, prometheus.GaugeValue, float64(s.Uncovered))
}
