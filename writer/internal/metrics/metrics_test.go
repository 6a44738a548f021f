package metrics

import (
	"bufio"
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

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	m := New()
	m.ObserveFlush(Flush{Events: 12, Applied: 10, Skipped: 1, Quarantined: 1, Rows: 30, Duration: 20 * time.Millisecond, Cursor: 42, Lag: 150 * time.Millisecond})
	m.SetLag(3)
	m.SetConnected(true)
	m.ObserveConfirm(ConfirmOK, 7)
	m.ObserveConfirm(ConfirmBehind, 0)
	m.ObserveConfirm(ConfirmCollector, 0)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	var sick atomic.Bool
	healthy := func() error {
		if sick.Load() {
			return errors.New("writer loop stalled for 12s")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, m, healthy, slog.New(slog.DiscardHandler)) }()
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("metrics server did not listen")
		}
		time.Sleep(10 * time.Millisecond)
	}

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"kickmon_writer_batches_total 1",
		`kickmon_writer_events_total{outcome="applied"} 10`,
		`kickmon_writer_events_total{outcome="quarantined"} 1`,
		"kickmon_writer_rows_total 30",
		"kickmon_writer_flush_duration_seconds_count 1",
		"kickmon_writer_lag_events 3",
		"kickmon_writer_lag_seconds 0.15",
		"kickmon_writer_cursor_seq 42",
		"kickmon_writer_collector_connected 1",
		`kickmon_writer_confirm_refreshes_total{outcome="ok"} 1`,
		`kickmon_writer_confirm_refreshes_total{outcome="behind"} 1`,
		`kickmon_writer_confirm_refreshes_total{outcome="collector"} 1`,
		`kickmon_writer_confirm_refreshes_total{outcome="database"} 0`,
		"kickmon_writer_confirm_rows_total 7",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, "\nkickmon_writer_confirm_last_success_timestamp_seconds 1.") {
		t.Errorf("/metrics lacks the last confirmation refresh time")
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz healthy: %d", code)
	}
	sick.Store(true)
	if code, body := get(t, base+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stalled") {
		t.Errorf("/healthz unhealthy: %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestNilMetricsIgnoresEverything(t *testing.T) {
	var m *Metrics
	m.ObserveFlush(Flush{Events: 1})
	m.FlushFailed()
	m.SetLag(1)
	m.SetConnected(true)
	m.ObserveConfirm(ConfirmOK, 1)
}

// Every metric the writer exports is documented in README.md's metrics
// table, with its meaning.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	m := New()
	m.ObserveFlush(Flush{Events: 1, Applied: 1, Rows: 1, Duration: time.Millisecond, Cursor: 1, Lag: time.Millisecond})
	m.ObserveConfirm(ConfirmOK, 1)
	m.ConfirmDuration(time.Millisecond)
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
	go func() { done <- Serve(ctx, addr, New(), func() error { return nil }, slog.New(slog.DiscardHandler)) }()
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
