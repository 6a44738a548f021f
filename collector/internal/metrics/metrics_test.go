package metrics

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/webhook"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"EVENT_KIND_STREAM_STARTED": "STREAM_STARTED",
		"SOURCE_PUSHER":             "pusher",
		"HEALTH_RATE_LIMITED":       "RATE_LIMITED",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeMetricsAndHealth(t *testing.T) {
	status := &kickmonv1.CollectorStatus{
		Streamers: 3, Live: 1,
		Sources: []*kickmonv1.SourceStatus{{Source: kickmonv1.Source_SOURCE_POLL, Health: kickmonv1.Health_HEALTH_OK}},
		Sockets: []*kickmonv1.SocketStatus{{State: "connected"}, {State: "connected"}},
		Spool:   &kickmonv1.SpoolStatus{LastSeq: 9, AckedSeq: 7, MaxBytes: 1 << 20},
	}
	m := New(func() *kickmonv1.CollectorStatus { return status })
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m.ObserveEvents([]*kickmonv1.Event{{
		Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, Source: kickmonv1.Source_SOURCE_PUSHER,
		KickTime: timestamppb.New(start), ObservedAt: timestamppb.New(start.Add(800 * time.Millisecond)),
	}})
	m.APIRequest("channels", "ok")
	m.Quarantined(&kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED})

	var sick atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, m, func() error {
			if sick.Load() {
				return errors.New("no source works")
			}
			return nil
		}, slog.New(slog.DiscardHandler))
	}()
	base := "http://" + ln.Addr().String()

	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`kickmon_collector_events_total{kind="STREAM_STARTED",source="pusher"} 1`,
		`kickmon_collector_events_quarantined_total{kind="STREAM_UPDATED"} 1`,
		`kickmon_collector_detection_latency_seconds_bucket{source="pusher",le="1"} 1`,
		`kickmon_collector_api_requests_total{endpoint="channels",outcome="ok"} 1`,
		`kickmon_collector_streamers 3`,
		`kickmon_collector_pusher_sockets{state="connected"} 2`,
		`kickmon_collector_source_up{health="ok",source="poll"} 1`,
		`kickmon_collector_spool_seq{which="acked"} 7`,
		"\nkickmon_collector_spool_max_bytes 1.048576e+06\n",
		"\nkickmon_collector_writer_lag_events 2\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz healthy: %d", code)
	}
	sick.Store(true)
	if code, body := get(t, base+"/healthz"); code != 503 || !strings.Contains(body, "no source works") {
		t.Errorf("/healthz sick: %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestWriterLag(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }
	for _, tc := range []struct {
		name   string
		sp     *kickmonv1.SpoolStatus
		events uint64
		lag    time.Duration
	}{
		{"caught up", &kickmonv1.SpoolStatus{LastSeq: 5, AckedSeq: 5, AckedAt: ago(time.Hour)}, 0, 0},
		{"empty", &kickmonv1.SpoolStatus{}, 0, 0},
		{"oldest unacked known", &kickmonv1.SpoolStatus{LastSeq: 9, AckedSeq: 5, AckedAt: ago(time.Hour), OldestUnackedAt: ago(3 * time.Second)}, 4, 3 * time.Second},
		{"since the last ack", &kickmonv1.SpoolStatus{LastSeq: 9, AckedSeq: 5, AckedAt: ago(time.Minute)}, 4, time.Minute},
		{"never acked, no time", &kickmonv1.SpoolStatus{LastSeq: 3}, 3, 0},
	} {
		events, lag := writerLag(tc.sp, now)
		if events != tc.events || lag != tc.lag {
			t.Errorf("%s: %d events, %s; want %d, %s", tc.name, events, lag, tc.events, tc.lag)
		}
	}
}

// Every metric the collector exports is documented in README.md's metrics
// table, with its meaning.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	m := New(func() *kickmonv1.CollectorStatus {
		return &kickmonv1.CollectorStatus{Spool: &kickmonv1.SpoolStatus{}, Sockets: []*kickmonv1.SocketStatus{{State: "connected"}},
			Sources: []*kickmonv1.SourceStatus{{Source: kickmonv1.Source_SOURCE_POLL}}}
	})
	m.ObserveEvents([]*kickmonv1.Event{{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, KickTime: timestamppb.Now(), ObservedAt: timestamppb.Now()}})
	m.APIRequest("channels", "ok")
	m.WatchPoller(func() poller.Status {
		return poller.Status{RequestsBy: map[string]int64{poller.ReasonRound: 1}, RefreshesBy: map[string]int64{poller.ReasonRound: 50}}
	})
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if name := f.GetName(); strings.HasPrefix(name, "kickmon_") {
			n++
			if !strings.Contains(string(readme), "| `"+name+"` |") {
				t.Errorf("README.md's metrics table lacks a row for %s", name)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d kickmon metrics gathered", n)
	}
}

// TestIdleConnectionsAreClosed: a client that keeps a connection open
// without using it is cut off (before, only ReadHeaderTimeout was set and
// an idle connection stayed open forever).
func TestIdleConnectionsAreClosed(t *testing.T) {
	old := idleTimeout
	idleTimeout = 200 * time.Millisecond
	t.Cleanup(func() { idleTimeout = old })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, addr, New(func() *kickmonv1.CollectorStatus { return &kickmonv1.CollectorStatus{} }), func() error { return nil }, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for conn == nil {
		if conn, err = net.Dial("tcp", addr); err != nil && time.Now().After(deadline) {
			t.Fatalf("metrics server did not listen: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: metrics\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	// Now idle: the server must close the connection (a generous deadline,
	// not a timing assertion).
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection: read = %v, want the server to close it (EOF)", err)
	}
}

// TestWebhookCountersScraped: the receiver's counters by outcome are on
// /metrics (its rejections are logged at debug only).
func TestWebhookCountersScraped(t *testing.T) {
	h, err := webhook.NewHandler(webhook.Options{Out: make(chan observation.Observation, 1)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // no headers: bad request
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.Path, strings.NewReader("{}")))
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d", rec.Code)
		}
	}
	m := New(func() *kickmonv1.CollectorStatus { return &kickmonv1.CollectorStatus{} })
	m.WatchWebhooks(h.Stats)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, m, func() error { return nil }, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	code, body := get(t, "http://"+ln.Addr().String()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`kickmon_collector_webhook_deliveries_total{outcome="bad_request"} 3`,
		`kickmon_collector_webhook_deliveries_total{outcome="accepted"} 0`,
		`kickmon_collector_webhook_deliveries_total{outcome="bad_signature"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
