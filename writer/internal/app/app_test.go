package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/writer/internal/app"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"github.com/kickmon/kickmon/writer/pgtest"
)

// childEnv makes the test binary act as kickwriter (see TestMain), so tests
// can run the daemon as a real process and kill it.
const childEnv = "KICKWRITER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "kickwriter: %v\n", err)
		}
		os.Exit(app.ExitCode(err))
	}
	os.Exit(writertest.Main(m))
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigErrorsListedAtOnce(t *testing.T) {
	var out, errb bytes.Buffer
	err := app.Run(context.Background(), nil, getenv(map[string]string{
		"KICKMON_BATCH_SIZE":     "lots",
		"KICKMON_BATCH_INTERVAL": "-1s",
		"KICKMON_DATABASE_URL":   "postgres://kickmon:hunter2@db.example.com/kickmon",
	}), &out, &errb)
	if err == nil {
		t.Fatal("Run succeeded with a bad configuration")
	}
	for _, want := range []string{"3 problems", "KICKMON_BATCH_SIZE", "KICKMON_BATCH_INTERVAL", "is reached without TLS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error()+out.String()+errb.String(), "hunter2") {
		t.Errorf("the password leaked: %v\n%s%s", err, out.String(), errb.String())
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		args      []string
		wantOut   string
		wantUsage bool
	}{
		{[]string{"version"}, fmt.Sprintf("kickwriter dev (schema version %d)\n", store.LatestVersion()), false},
		{[]string{"--help"}, "Usage: kickwriter", false},
		{[]string{"frobnicate"}, "", true},
		{[]string{"run", "extra"}, "", true},
		{[]string{"--nope"}, "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := app.Run(context.Background(), tt.args, getenv(nil), &out, &bytes.Buffer{})
			if got := errors.Is(err, app.ErrUsage); got != tt.wantUsage {
				t.Fatalf("err = %v, usage error %v, want %v", err, got, tt.wantUsage)
			}
			if !tt.wantUsage && (err != nil || !strings.HasPrefix(out.String(), tt.wantOut)) {
				t.Errorf("out = %q, err = %v; want prefix %q", out.String(), err, tt.wantOut)
			}
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	db := pgtest.New(t) // empty, not migrated
	env := getenv(map[string]string{"KICKMON_DATABASE_URL": db.URL})
	for _, want := range []string{
		fmt.Sprintf("schema kickmon migrated from version 0 to %d\n", store.LatestVersion()),
		fmt.Sprintf("schema kickmon is up to date (version %d)\n", store.LatestVersion()),
	} {
		var out bytes.Buffer
		if err := app.Run(context.Background(), []string{"migrate"}, env, &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("out = %q, want %q", out.String(), want)
		}
	}
}

// child is kickwriter running as a separate process.
type child struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	// The test events are dated writertest.T0, months ago: the default
	// retention would drop them as the daemon starts.
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1", "KICKMON_LOG_LEVEL=debug", "KICKMON_EVENTS_RETENTION=0"}, env...)...)
	c := &child{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		c.done <- nil
		if t.Failed() {
			t.Logf("kickwriter output:\n%s", c.out.String())
		}
	})
	return c
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Errorf("kickwriter exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("kickwriter did not exit within 30s of SIGTERM")
	}
}

func (c *child) exited() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return true
	default:
		return false
	}
}

// notifySocket captures sd_notify datagrams, as systemd would.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "kwn")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "n")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done; _ = os.RemoveAll(dir) })
	return path, ch
}

// await reads datagrams until one satisfies match, returning those before it.
func await(t *testing.T, c *child, ch <-chan string, what string, match func(string) bool) []string {
	t.Helper()
	var seen []string
	timeout := time.After(60 * time.Second)
	for {
		select {
		case err := <-c.done:
			c.done <- err
			for { // datagrams sent before the exit are still queued
				select {
				case m := <-ch:
					if match(m) {
						return seen
					}
					seen = append(seen, m)
					continue
				default:
				}
				break
			}
			t.Fatalf("kickwriter exited (%v) while waiting for %s; saw %q", err, what, seen)
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("notify socket closed waiting for %s; saw %q", what, seen)
			}
			if match(m) {
				return seen
			}
			seen = append(seen, m)
		case <-timeout:
			t.Fatalf("no %s within 60s; saw %q", what, seen)
		}
	}
}

func query1(t *testing.T, url, sql string, dest ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func waitAcked(t *testing.T, fake *kickapitest.Server, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fake.WaitAcked(ctx, seq); err != nil {
		t.Fatal(err)
	}
}

// The daemon's life: READY only after ping, migrations and subscription;
// a PostgreSQL outage shows in STATUS while the process keeps running;
// SIGTERM drains what is buffered, with STOPPING first.
func TestDaemonLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	cluster := pgtest.NewCluster(t)
	db := cluster.NewDatabase(t) // empty: the daemon migrates it
	fake := kickapitest.NewServer(t)
	fake.Stop() // the collector is not up yet
	notify, dgrams := notifySocket(t)
	c := startChild(t, "KICKMON_DATABASE_URL="+db.URL, "KICKMON_SOCKET="+fake.Path(), "NOTIFY_SOCKET="+notify,
		"WATCHDOG_USEC=200000", "KICKMON_BATCH_INTERVAL=1m", "KICKMON_BATCH_SIZE=5", "KICKMON_CONFIRM_INTERVAL=1s")

	await(t, c, dgrams, "a STATUS waiting for the collector", func(m string) bool { return strings.HasPrefix(m, "STATUS=waiting for kickcollector") })
	var version int
	query1(t, db.URL, `SELECT max(version) FROM kickmon.schema_migrations`, &version) // migrated before subscribing
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	before := await(t, c, dgrams, "READY=1", func(m string) bool { return m == "READY=1" })
	for _, m := range before {
		if m == "WATCHDOG=1" {
			t.Errorf("watchdog ping before READY: %q", before)
		}
	}

	fake.Publish(writertest.Updates(0, 10, 3)...)
	waitAcked(t, fake, 10)
	// The collector confirms the unchanged states without events; the
	// refresher brings the confirmation times over.
	var confirmed []*kickmonv1.Streamer
	for uid := range int64(3) {
		st := writertest.Streamer(uid+1, fmt.Sprintf("s%d", uid+1))
		st.LastConfirmedAt = writertest.At(time.Hour)
		confirmed = append(confirmed, st)
	}
	fake.SetStreamers(confirmed...)
	deadline := time.Now().Add(60 * time.Second)
	for n := 0; n != 3; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 streamers show the collector's confirmation time after 60s", n)
		}
		time.Sleep(50 * time.Millisecond)
		query1(t, db.URL, fmt.Sprintf(`SELECT count(*) FROM kickmon.streamers WHERE last_confirmed_at = '%s'`, writertest.T0.Add(time.Hour).Format(time.RFC3339)), &n)
	}

	cluster.Stop()
	fake.Publish(writertest.Updates(0, 10, 3)...)
	await(t, c, dgrams, "a STATUS showing the outage", func(m string) bool { return strings.Contains(m, "STATUS=PostgreSQL unavailable") })
	await(t, c, dgrams, "a watchdog ping during the outage", func(m string) bool { return m == "WATCHDOG=1" })
	if c.exited() {
		t.Fatal("kickwriter exited during the database outage")
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, fake, 20)

	// Below the size trigger and far from the interval: only a drain writes these.
	fake.Publish(writertest.Updates(0, 3, 3)...)
	await(t, c, dgrams, "a STATUS with 3 events held", func(m string) bool { return strings.Contains(m, "cursor 20, 3 waiting") })
	c.stop(t)
	await(t, c, dgrams, "STOPPING=1", func(m string) bool { return m == "STOPPING=1" })
	var n, maxSeq int64
	query1(t, db.URL, `SELECT count(*), coalesce(max(seq), 0) FROM kickmon.status_events`, &n, &maxSeq)
	if n != 23 || maxSeq != 23 || fake.Acked() != 23 {
		t.Errorf("after drain: %d rows, max seq %d, acked %d; want 23 each", n, maxSeq, fake.Acked())
	}
}

// A writer killed with SIGKILL mid-stream, and restarted, loses and
// duplicates nothing.
func TestKilledMidStreamLosesNothing(t *testing.T) {
	db := writertest.NewDB(t)
	fake := kickapitest.NewServer(t)
	const total, chunk, users = 30000, 500, 50
	published := make(chan struct{})
	stopPublishing := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < total; i += chunk {
			select {
			case <-stopPublishing:
				return
			default:
			}
			fake.Publish(writertest.Updates(0, chunk, users)...)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { close(stopPublishing); <-published })
	env := []string{"KICKMON_DATABASE_URL=" + db.URL, "KICKMON_SOCKET=" + fake.Path()}

	for round := 1; round <= 2; round++ {
		c := startChild(t, env...)
		waitAcked(t, fake, uint64(round*total/4))
		_ = c.cmd.Process.Kill()
		<-c.done
		c.done <- nil
		if acked := fake.Acked(); acked >= total {
			t.Logf("round %d: killed after everything was acked (%d); the kill was not mid-stream", round, acked)
		}
	}
	<-published
	c := startChild(t, env...)
	waitAcked(t, fake, total)
	c.stop(t)

	var n, minSeq, maxSeq, stale int64
	query1(t, db.URL, `SELECT count(*), min(seq), max(seq) FROM kickmon.status_events`, &n, &minSeq, &maxSeq)
	if n != total || minSeq != 1 || maxSeq != total {
		t.Errorf("status_events: %d rows, seqs %d-%d; want %d rows, 1-%d", n, minSeq, maxSeq, total, total)
	}
	query1(t, db.URL, `SELECT count(*) FROM kickmon.streamers s WHERE last_event_seq <>
  (SELECT max(seq) FROM kickmon.status_events e WHERE e.broadcaster_user_id = s.broadcaster_user_id)`, &stale)
	if stale != 0 {
		t.Errorf("%d streamers rows do not reflect their newest event", stale)
	}
}

// With KICKMON_ON_LOG_CHANGE=stop, a replaced event log stops the daemon
// with exit status 3 and a STATUS line saying why.
func TestLogChangedStopExitStatus(t *testing.T) {
	db := writertest.NewDB(t)
	fake := kickapitest.NewServer(t)
	notify, dgrams := notifySocket(t)
	c := startChild(t, "KICKMON_DATABASE_URL="+db.URL, "KICKMON_SOCKET="+fake.Path(), "NOTIFY_SOCKET="+notify,
		"KICKMON_ON_LOG_CHANGE=stop")
	fake.Publish(writertest.Updates(0, 3, 1)...)
	waitAcked(t, fake, 3)
	fake.ReplaceLog("another-log")
	await(t, c, dgrams, "a STATUS saying why it stopped", func(m string) bool {
		return strings.HasPrefix(m, "STATUS=stopped (exit status 3)") && strings.Contains(m, "KICKMON_ON_LOG_CHANGE=stop")
	})
	err := <-c.done
	c.done <- err
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != app.ExitLogChanged {
		t.Fatalf("kickwriter exited with %v, want exit status %d", err, app.ExitLogChanged)
	}
	var cursor int64
	query1(t, db.URL, `SELECT last_seq FROM kickmon.writer_cursor`, &cursor)
	if cursor != 3 {
		t.Errorf("cursor %d after the stop, want 3 (the old log's events stored)", cursor)
	}
}
