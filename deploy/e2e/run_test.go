package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	kickrun "github.com/kickmon/kickmon/deploy/internal/run"
)

// make run, headless, with kicksim standing in for Kick through the same URL
// settings a user would change: the first run records the streamers, quitting
// keeps the data, and a second run on the same directory resumes with the
// same sessions and nothing recorded twice.
func TestRunResumes(t *testing.T) {
	simEnv := startKicksim(t, "--streamers", "6", "--live-fraction", "1")
	var slugs []string
	var dotenv bytes.Buffer
	for _, kv := range simEnv {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "KICKMON_STREAMERS":
			slugs = strings.Split(v, ",")[:4]
		case !strings.HasPrefix(k, "KICKSIM_"):
			// Credentials and URLs in .env, as a user would keep them.
			dotenv.WriteString(k + "='" + v + "'\n")
		}
	}
	top := reachableTempDir(t)
	envFile := filepath.Join(top, ".env")
	if err := os.WriteFile(envFile, dotenv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Relative paths from the top of a checkout, as make run gives them.
	t.Chdir(top)
	o := kickrun.Options{BinDir: bin, Dir: ".kickmon", EnvFile: ".env", Headless: true,
		Environ: []string{"KICKMON_STREAMERS=" + strings.Join(slugs, ","), "KICKMON_POLL_INTERVAL=1s", "KICKMON_CONFIRM_INTERVAL=1s", "KICKMON_API_BUDGET=6000"}}

	type session struct{ id, started string }
	sessions := func(dsn string) map[session]bool {
		rows := queryDSN(t, dsn, `SELECT session_id, started_at::text FROM kickmon.stream_sessions`)
		out := map[session]bool{}
		for _, r := range rows {
			out[session{r[0].(string), r[1].(string)}] = true
		}
		return out
	}
	// settled waits until this run's collector has confirmed every streamer
	// through the writer, each live streamer with its one open session.
	settled := func(info kickrun.Info, since time.Time) {
		q := func(sql string, args ...any) int64 { return countDSN(t, info.DSN, sql, args...) }
		waitFor(t, 90*time.Second, "every streamer confirmed by this run, with one open session each", func() bool {
			return q(`SELECT count(*) FROM kickmon.streamers WHERE removed_at IS NULL AND last_confirmed_at > $1`, since) == 4 &&
				q(`SELECT count(*) FROM kickmon.stream_sessions WHERE ended_at IS NULL`) == 4
		})
	}

	var first map[session]bool
	var firstEvents int64
	runOnce(t, o, func(info kickrun.Info, since time.Time) {
		settled(info, since)
		s := &system{t: t, socket: info.Socket}
		out, err := s.ctl("streamers", "list")
		if err != nil {
			t.Fatalf("kickctl streamers list: %v\n%s", err, out)
		}
		for _, slug := range slugs {
			if !strings.Contains(out, slug) {
				t.Errorf("kickctl streamers list does not show %s:\n%s", slug, out)
			}
		}
		// A second make run on the same data is refused at once, touching nothing.
		var msgs bytes.Buffer
		o2 := o
		o2.Stdout, o2.Stderr = &msgs, &msgs
		if err := kickrun.Run(context.Background(), o2); err == nil || !strings.Contains(err.Error(), "another make run") {
			t.Errorf("a second run on the same directory: %v, want it refused\n%s", err, msgs.String())
		}
		first = sessions(info.DSN)
		firstEvents = countDSN(t, info.DSN, `SELECT count(*) FROM kickmon.status_events`)
	})
	if _, err := os.Stat(filepath.Join(top, ".kickmon", "pg", ".s.PGSQL.5432")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PostgreSQL still listening after the run stopped (%v)", err)
	}
	runOnce(t, o, func(info kickrun.Info, since time.Time) {
		settled(info, since)
		if n := countDSN(t, info.DSN, `SELECT count(*) FROM kickmon.streamers`); n != 4 {
			t.Errorf("%d streamer rows after the second run, want 4", n)
		}
		// The first run's rows are still there (stored before this run began)…
		if n := countDSN(t, info.DSN, `SELECT count(*) FROM kickmon.status_events WHERE stored_at < $1`, since); n != firstEvents {
			t.Errorf("%d events stored before the second run, want the first run's %d", n, firstEvents)
		}
		// …and nothing was said twice: each streamer added once, each session started once.
		for _, kind := range []string{"STREAMER_ADDED", "STREAM_STARTED"} {
			if n := countDSN(t, info.DSN, `SELECT count(*) FROM kickmon.status_events WHERE kind = $1`, kind); n != 4 {
				t.Errorf("%d %s events after two runs, want 4", n, kind)
			}
		}
		second := sessions(info.DSN)
		if len(second) != len(first) {
			t.Errorf("sessions: %d after the first run, %d after the second: %v then %v", len(first), len(second), first, second)
		}
		for s := range first {
			if !second[s] {
				t.Errorf("session %v of the first run changed or vanished in the second: %v", s, second)
			}
		}
	})
}

// Without credentials make run says how to get them, offers the demo, and fails.
func TestRunWithoutCredentials(t *testing.T) {
	var out bytes.Buffer
	top := t.TempDir()
	err := kickrun.Run(context.Background(), kickrun.Options{BinDir: bin, Dir: filepath.Join(top, "d"), EnvFile: filepath.Join(top, "missing.env"),
		Environ: []string{"KICK_CLIENT_ID=only-the-id"}, Headless: true, Stdout: &out, Stderr: &out})
	if !errors.Is(err, kickrun.ErrNoCredentials) {
		t.Fatalf("run without a secret: %v, want ErrNoCredentials", err)
	}
	for _, want := range []string{"https://kick.com/settings/developer", "KICK_CLIENT_SECRET=", ".env", "make demo"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("message lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(top, "d")); err == nil {
		t.Error("data directory created without credentials")
	}
}

// runOnce runs make run's logic headless until fn returns, then stops it and
// checks that nothing is left running.
func runOnce(t *testing.T, o kickrun.Options, fn func(info kickrun.Info, since time.Time)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	o.Stdout, o.Stderr = &out, &out
	infoc := make(chan kickrun.Info, 1)
	o.OnReady = func(i kickrun.Info) { infoc <- i }
	done := make(chan error, 1)
	since := time.Now()
	go func() { done <- kickrun.Run(ctx, o) }()
	var info kickrun.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, out.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("run not ready:\n%s", out.String())
	}
	func() {
		defer func() {
			if t.Failed() {
				for _, name := range []string{"kickcollector", "kickwriter"} {
					if b, err := os.ReadFile(filepath.Join(o.Dir, "logs", name+".log")); err == nil {
						t.Logf("%s.log (last 4 KiB):\n%s", name, tail(b, 4096))
					}
				}
			}
		}()
		fn(info, since)
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v\n%s", err, out.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, pid := range info.Pids {
		if proc.Alive(pid) {
			t.Errorf("process %d still running after the run stopped", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// startKicksim starts kicksim alone and returns the environment it prints.
func startKicksim(t *testing.T, args ...string) []string {
	t.Helper()
	out, w := io.Pipe()
	sim, err := proc.Start(proc.Spec{Name: "kicksim", Path: filepath.Join(bin, "kicksim"), Stdout: w,
		Args: append([]string{"--listen", "127.0.0.1:0"}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop(10 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := proc.ReadEnv(ctx, out, func(k string) bool { return k == "KICKMON_STREAMERS" })
	if err != nil {
		t.Fatalf("kicksim env: %v", err)
	}
	return env
}

// reachableTempDir is a temporary directory PostgreSQL's unprivileged user
// can reach when the tests run as root.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// queryDSN runs a query and returns its rows.
func queryDSN(t *testing.T, dsn, sql string, args ...any) [][]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
