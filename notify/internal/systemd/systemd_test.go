package systemd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen captures the datagrams sd_notify sends, as systemd would.
func listen(t *testing.T) *net.UnixConn {
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
	return conn
}

// read returns the next datagram, failing the test if none comes in 10s.
func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify datagram: %v", err)
	}
	return string(buf[:n])
}

// queued returns a datagram already waiting, or "" (a non-blocking poll).
func queued(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n := 0
	if err := rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	return string(buf[:max(n, 0)])
}

func TestMessages(t *testing.T) {
	c := listen(t)
	n := New(slog.New(slog.DiscardHandler))
	n.Ready()
	n.Status("last flush 12:00:01, seq 1234, lag 0")
	n.Stopping()
	for _, want := range []string{"READY=1", "STATUS=last flush 12:00:01, seq 1234, lag 0", "STOPPING=1"} {
		if got := read(t, c); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// The watchdog pings after healthy checks only. The health function runs
// on the pinger's goroutine, so when check k+1 starts, any ping for check k
// is already in the socket's buffer.
func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000") // checks every 10ms
	t.Setenv("WATCHDOG_PID", "")
	checks := make(chan int)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	calls := 0
	go func() {
		defer close(done)
		New(slog.New(slog.DiscardHandler)).Watchdog(ctx, func() error {
			calls++
			select {
			case checks <- calls:
			case <-ctx.Done():
				return errors.New("stopping")
			}
			<-release
			if calls >= 2 && calls <= 4 {
				return errors.New("loop stalled")
			}
			return nil
		})
	}()
	for want := 1; want <= 6; want++ {
		if got := <-checks; got != want {
			t.Fatalf("check %d, want %d", got, want)
		}
		// Check want is running: the previous check's ping, if any, has been sent.
		got := queued(t, c)
		healthyBefore := want-1 == 1 || want-1 == 5
		switch {
		case healthyBefore && got != "WATCHDOG=1":
			t.Errorf("after healthy check %d: got %q, want WATCHDOG=1", want-1, got)
		case !healthyBefore && got != "":
			t.Errorf("after check %d: got %q, want nothing", want-1, got)
		}
		release <- struct{}{}
	}
	cancel()
	<-done
}

func TestSilentWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n := New(slog.New(slog.DiscardHandler))
	n.Ready() // must not panic or block
	done := make(chan struct{})
	go func() { n.Watchdog(context.Background(), func() error { return nil }); close(done) }()
	<-done // returns at once: the watchdog is not enabled
}
