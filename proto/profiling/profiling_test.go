package profiling

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, problem string
	}{
		{"", ""},
		{"127.0.0.1:6060", ""},
		{"[::1]:6060", ""},
		{"localhost:6060", ""},
		{"127.0.0.2:0", ""},
		{"0.0.0.0:6060", "loopback only"},
		{":6060", "loopback only"},
		{"192.168.1.4:6060", "loopback only"},
		{"example.com:6060", "loopback only"},
		{"6060", "want host:port"},
	} {
		err := CheckAddr("KICKMON_PPROF_ADDR", tc.addr)
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), "KICKMON_PPROF_ADDR")):
			t.Errorf("%q: %v, want an error naming the variable and %q", tc.addr, err, tc.problem)
		}
	}
}

// Serve answers pprof on loopback and stops with its context.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // Serve binds it again
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, slog.New(slog.DiscardHandler)) }()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pprof never answered on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %.200s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
