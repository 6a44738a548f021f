package sdnotify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen captures the datagrams sd_notify sends, as systemd would.
func listen(t *testing.T) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no sd_notify datagram")
		return ""
	}
}

func TestMessages(t *testing.T) {
	ch := listen(t)
	n := New(slog.New(slog.DiscardHandler))
	n.Ready()
	n.Status("watching 3 streamers, 1 live")
	n.Stopping()
	for _, want := range []string{"READY=1", "STATUS=watching 3 streamers, 1 live", "STOPPING=1"} {
		if got := next(t, ch); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// The watchdog pings only while the health check passes.
func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	ch := listen(t)
	t.Setenv("WATCHDOG_USEC", "40000") // 40ms: pings every 20ms
	t.Setenv("WATCHDOG_PID", "")
	var sick atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		New(slog.New(slog.DiscardHandler)).Watchdog(ctx, func() error {
			if sick.Load() {
				return errors.New("main loop stalled")
			}
			return nil
		})
		close(done)
	}()
	if got := next(t, ch); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1", got)
	}
	sick.Store(true)
	// Drain pings that raced with the switch, then expect silence.
	time.Sleep(50 * time.Millisecond)
	for len(ch) > 0 {
		<-ch
	}
	select {
	case m := <-ch:
		t.Errorf("got %q while unhealthy", m)
	case <-time.After(150 * time.Millisecond):
	}
	sick.Store(false)
	if got := next(t, ch); !strings.HasPrefix(got, "WATCHDOG=1") {
		t.Errorf("got %q after recovery", got)
	}
	cancel()
	<-done
}

func TestSilentWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New(slog.New(slog.DiscardHandler))
	n.Ready() // must not panic or block
	done := make(chan struct{})
	go func() { n.Watchdog(context.Background(), func() error { return nil }); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("Watchdog kept running although the watchdog is not enabled")
	}
}
