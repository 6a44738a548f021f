package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	m := New()
	m.Delivered("d", OutcomeDelivered, 300*time.Millisecond)
	m.Delivered("d", OutcomeRetry, 0)
	m.SetBacklog("d", "retrying", 2)
	m.SetOutbox(3, 1500*time.Millisecond)
	m.OutboxMoved(4)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	var down atomic.Bool
	healthy := func() error {
		if down.Load() {
			return errors.New("database: down")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, m, healthy, slog.New(slog.DiscardHandler)) }()
	get := func(path string) (int, string) {
		for range 100 {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		t.Fatalf("GET %s: server never answered", path)
		return 0, ""
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`kickmon_notify_deliveries_total{outcome="delivered",target="d"} 1`,
		`kickmon_notify_deliveries_total{outcome="retry",target="d"} 1`,
		`kickmon_notify_latency_seconds_count{target="d"} 1`,
		`kickmon_notify_backlog{state="retrying",target="d"} 2`,
		"kickmon_notify_outbox_rows 3",
		"kickmon_notify_outbox_oldest_seconds 1.5",
		"kickmon_notify_outbox_moved_total 4",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d while healthy", code)
	}
	down.Store(true)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "database: down") {
		t.Errorf("/healthz = %d %q while unhealthy", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// Every metric kicknotify exports is documented in README.md's metrics
// table, with its meaning.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	m := New()
	m.Delivered("d", OutcomeDelivered, time.Second)
	m.SetBacklog("d", "pending", 1)
	m.SetOutbox(1, time.Second)
	m.OutboxMoved(1)
	families, err := m.reg.Gather()
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
	if n < 6 {
		t.Errorf("only %d kickmon metrics gathered", n)
	}
}
