package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/demo"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// A streamer going live and offline, with push and poll both on, becomes
// exactly one session in PostgreSQL, opened and closed. kicksim offers only
// Pusher here (realtime_test.go covers Centrifugo and the negotiation).
func TestLiveAndOfflineReachPostgreSQL(t *testing.T) {
	s := startSystemSim(t, []string{"--realtime", "pusher"}, 6, "KICKMON_STREAMERS=")
	st := s.streamers()
	a, b := st[0], st[1]
	// Give one streamer its channel id so Pusher covers it from the start.
	if out, err := s.ctl("streamers", "add", a.Slug, "--channel-id", fmt.Sprint(a.ChannelID)); err != nil {
		t.Fatalf("kickctl add: %v\n%s", err, out)
	}
	if out, err := s.ctl("streamers", "add", b.Slug, "no-such-streamer"); err == nil || !strings.Contains(out, "no-such-streamer") {
		t.Fatalf("kickctl add with an unknown slug: err=%v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "both streamers in kickmon.streamers", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.streamers WHERE removed_at IS NULL`) == 2
	})
	waitFor(t, 20*time.Second, "pusher subscribed", func() bool {
		return strings.Contains(string(s.sim("GET", "/subscriptions?channel=channel."+fmt.Sprint(a.ChannelID), nil)), `"sockets":1`)
	})

	for _, x := range []simStreamer{a, b} {
		s.sim("POST", fmt.Sprintf("/streamers/%d/live", x.UserID), nil)
	}
	for _, x := range []simStreamer{a, b} {
		waitFor(t, 20*time.Second, x.Slug+" live in PostgreSQL", func() bool {
			return s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1 AND ended_at IS NULL AND NOT started_at_provisional`, x.UserID) == 1
		})
	}
	for _, x := range []simStreamer{a, b} {
		s.sim("POST", fmt.Sprintf("/streamers/%d/offline", x.UserID), nil)
	}
	for _, x := range []simStreamer{a, b} {
		waitFor(t, 20*time.Second, x.Slug+" ended in PostgreSQL", func() bool {
			return s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1 AND ended_at IS NOT NULL`, x.UserID) == 1
		})
		if n := s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1`, x.UserID); n != 1 {
			t.Errorf("%s: %d sessions, want 1", x.Slug, n)
		}
		for _, kind := range []string{"STREAM_STARTED", "STREAM_ENDED"} {
			if n := s.count(`SELECT count(*) FROM kickmon.status_events WHERE broadcaster_user_id = $1 AND kind = $2`, x.UserID, kind); n != 1 {
				t.Errorf("%s: %d %s events, want 1", x.Slug, n, kind)
			}
		}
	}
	// The push-covered streamer was detected by Pusher first.
	if rows := s.query(`SELECT detected_by FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1`, a.UserID); len(rows) != 1 || rows[0][0] != "pusher" {
		t.Errorf("session of %s detected by %v, want pusher", a.Slug, rows)
	}
	if out, err := s.ctl("streamers", "list"); err != nil || !strings.Contains(out, a.Slug) || !strings.Contains(out, b.Slug) {
		t.Errorf("kickctl streamers list: %v\n%s", err, out)
	}
}

// kill -9 of either daemon at any moment loses and duplicates nothing: the
// database ends up with every event of the spool exactly once.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts daemons")
	}
	s := startSystem(t, 10)
	st := s.streamers()
	waitFor(t, 30*time.Second, "streamers in PostgreSQL", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.streamers`) == int64(len(st))
	})
	flip := func(live bool) {
		for _, x := range st[:5] {
			verb := "offline"
			if live {
				verb = "live"
			}
			s.sim("POST", fmt.Sprintf("/streamers/%d/%s", x.UserID, verb), nil)
		}
	}
	open := func(n int64) func() bool {
		return func() bool {
			return s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE ended_at IS NULL`) == n
		}
	}
	// Each flip is followed at once by a kill -9, so the daemons die with
	// work in flight.
	flip(true)
	s.writer.Kill()
	s.startWriter()
	s.coll.Kill()
	s.startCollector()
	waitFor(t, 40*time.Second, "five open sessions", open(5))
	flip(false)
	s.writer.Kill()
	s.startWriter()
	waitFor(t, 40*time.Second, "sessions ended", open(0))
	flip(true)
	s.coll.Kill()
	s.startCollector()
	waitFor(t, 40*time.Second, "five open sessions again", open(5))

	var last int64
	waitFor(t, 40*time.Second, "writer caught up with the collector", func() bool {
		out, err := s.ctl("status", "-o", "json")
		if err != nil {
			return false
		}
		var lastSeq, acked int64
		_, _ = fmt.Sscan(jsonField(out, "last_seq"), &lastSeq)
		_, _ = fmt.Sscan(jsonField(out, "acked_seq"), &acked)
		last = lastSeq
		return lastSeq > 0 && lastSeq == acked
	})
	if n := s.count(`SELECT count(*) FROM kickmon.status_events`); n != last {
		t.Errorf("status_events has %d rows, collector wrote %d events", n, last)
	}
	if n := s.count(`SELECT max(seq) FROM kickmon.status_events`); n != last {
		t.Errorf("max seq %d, want %d", n, last)
	}
	if n := s.count(`SELECT last_seq FROM kickmon.writer_cursor`); n != last {
		t.Errorf("writer cursor %d, want %d", n, last)
	}
	// Each streamer went live twice: two sessions (one ended), never more.
	for _, x := range st[:5] {
		if n := s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1`, x.UserID); n != 2 {
			t.Errorf("%s: %d sessions, want 2", x.Slug, n)
			for _, r := range s.query(`SELECT seq, kind, source, state->'session'->>'session_id', state->'session'->>'started_at', state->'session'->>'ended_at' FROM kickmon.status_events WHERE broadcaster_user_id = $1 ORDER BY seq`, x.UserID) {
				t.Logf("  %v", r)
			}
		}
	}
}

// jsonField finds "key": value in JSON text (the first occurrence).
func jsonField(js, key string) string {
	i := strings.Index(js, `"`+key+`"`)
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(js[i+len(key)+2:], ": ")
	end := strings.IndexAny(rest, ",}\n")
	if end < 0 {
		end = len(rest)
	}
	return strings.Trim(rest[:end], `" `)
}

// spoolStatus is the collector's spool state, from kickctl status -o json.
func (s *system) spoolStatus() (*kickmonv1.SpoolStatus, error) {
	out, err := s.ctl("status", "-o", "json")
	if err != nil {
		return nil, err
	}
	var st kickmonv1.CollectorStatus
	if err := protojson.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("decode kickctl status -o json: %w", err)
	}
	return st.GetSpool(), nil
}

// A bad configuration stops kickcollector at once, naming every problem.
func TestCollectorBadConfig(t *testing.T) {
	cmd := exec.Command(filepath.Join(bin, "kickcollector"))
	cmd.Env = []string{"KICK_API_URL=http://insecure.example", "KICKMON_POLL_INTERVAL=fast", "KICKMON_SPOOL_MAX_BYTES=huge", "KICK_CLIENT_SECRET=topsecret"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("kickcollector accepted a bad configuration")
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("kickcollector did not exit on a bad configuration")
	}
	msg := stderr.String()
	for _, want := range []string{"KICK_CLIENT_ID", "KICK_API_URL", "KICKMON_POLL_INTERVAL", "KICKMON_SPOOL_MAX_BYTES"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr does not name %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "topsecret") {
		t.Errorf("stderr leaks the client secret:\n%s", msg)
	}
}

// make demo, headless: data reaches PostgreSQL, and stopping leaves no
// process behind.
func TestDemoHeadless(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	infoc := make(chan demo.Info, 1)
	done := make(chan error, 1)
	var out lockedBuffer // the webhook sink prints from its own goroutines
	go func() {
		done <- demo.Run(ctx, demo.Options{BinDir: bin, Streamers: 12, Rate: 4, Headless: true,
			Stdout: &out, Stderr: &out, OnReady: func(i demo.Info) { infoc <- i }})
	}()
	var info demo.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("demo ended early: %v\n%s", err, out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("demo not ready:\n%s", out.String())
	}
	s := &system{t: t, socket: info.Socket}
	q := func(sql string) int64 { return countDSN(t, info.DSN, sql) }
	waitFor(t, 60*time.Second, "streamers and sessions in PostgreSQL", func() bool {
		return q(`SELECT count(*) FROM kickmon.streamers`) == 12 && q(`SELECT count(*) FROM kickmon.stream_sessions`) > 0
	})
	if o, err := s.ctl("streamers", "list"); err != nil {
		t.Errorf("kickctl against the demo: %v\n%s", err, o)
	}
	if !strings.Contains(out.String(), "kickctl") || !strings.Contains(out.String(), "psql") {
		t.Errorf("demo did not print how to use kickctl and psql:\n%s", out.String())
	}
	waitFor(t, 90*time.Second, "a go-live notification at the demo's webhook sink", func() bool {
		return strings.Contains(out.String(), "kickdemo: notification demo-sink:")
	})
	// The demo removes its directory when it stops; keep the writer's log open
	// to read how it stopped.
	wlog, err := os.Open(filepath.Join(info.Dir, "kickwriter.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wlog.Close() }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not stop")
	}
	// kickwriter drains before PostgreSQL goes away: no errors on the way out.
	if b, err := io.ReadAll(wlog); err != nil {
		t.Error(err)
	} else if bytes.Contains(b, []byte(`"level":"ERROR"`)) {
		t.Errorf("kickwriter logged errors while the demo stopped:\n%s", tail(b, 4096))
	}
	// Nothing left listening: PostgreSQL's socket directory is gone too.
	if cfg, err := pgx.ParseConfig(info.DSN); err != nil {
		t.Errorf("the demo's DSN %q: %v", info.DSN, err)
	} else if _, err := os.Stat(cfg.Host); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("PostgreSQL's socket directory %s left behind (%v)", cfg.Host, err)
	}
	for _, pid := range info.Pids {
		if proc.Alive(pid) {
			t.Errorf("process %d still running after the demo stopped", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if _, err := exec.Command("test", "-e", info.Socket).CombinedOutput(); err == nil {
		t.Errorf("socket %s left behind", info.Socket)
	}
}

// A collector that exits at start ends the demo at once with a message that
// says so, rather than after the readiness timeout.
func TestDemoCollectorExits(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"kicksim", "kickwriter", "kickview", "kickctl", "kicknotify"} {
		if err := os.Symlink(filepath.Join(bin, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kickcollector"), []byte("#!/bin/sh\necho 'kickcollector: bad config' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{BinDir: dir, Streamers: 3, Headless: true, Stdout: &out, Stderr: &out})
	if err == nil || !strings.Contains(err.Error(), "exited before serving") {
		t.Fatalf("demo with a failing collector: %v, want an error saying it exited before serving\n%s", err, out.String())
	}
	// The error names the collector's log, which is kept.
	_, rest, _ := strings.Cut(err.Error(), "(see ")
	logPath, _, _ := strings.Cut(rest, ")")
	b, rerr := os.ReadFile(logPath)
	if rerr != nil || !bytes.Contains(b, []byte("bad config")) {
		t.Errorf("the log named by %q: %v %q", err, rerr, b)
	}
	if logPath != "" {
		_ = os.RemoveAll(filepath.Dir(logPath))
	}
}

// kickview against the real collector, in a real terminal (tmux): it shows
// the streamers, follows a change, resizes, and quits on q.
func TestKickviewInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is needed to drive kickview in a terminal: apt-get install tmux")
	}
	s := startSystem(t, 5)
	st := s.streamers()
	waitFor(t, 30*time.Second, "streamers watched", func() bool {
		out, err := s.ctl("streamers", "list")
		return err == nil && strings.Contains(out, st[0].Slug)
	})
	session := fmt.Sprintf("kv%d", time.Now().UnixNano())
	sock := filepath.Join(s.dir, "tmux.sock") // a private tmux server
	run := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
		filepath.Join(bin, "kickview")+" --socket "+s.socket+" --log-file "+filepath.Join(s.dir, "kickview.log")+"; sleep 30")
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })
	screen := func() string { return run("capture-pane", "-p", "-t", session) }
	waitFor(t, 20*time.Second, "kickview showing the streamers", func() bool {
		sc := screen()
		return strings.Contains(sc, st[0].Slug) && strings.Contains(sc, "connected")
	})
	s.sim("POST", fmt.Sprintf("/streamers/%d/live", st[1].UserID), nil)
	waitFor(t, 20*time.Second, "the go-live in the event log", func() bool {
		return strings.Contains(screen(), "STREAM_STARTED")
	})
	run("resize-window", "-t", session, "-x", "80", "-y", "24")
	waitFor(t, 10*time.Second, "a redraw at 80x24", func() bool {
		lines := strings.Split(strings.TrimRight(screen(), "\n"), "\n")
		return len(lines) <= 24 && strings.Contains(lines[0], "kickview")
	})
	run("send-keys", "-t", session, "q")
	waitFor(t, 10*time.Second, "kickview to quit", func() bool {
		return !strings.Contains(screen(), "kickview")
	})
	// The screen clears before kickview writes its last log line.
	waitFor(t, 10*time.Second, "kickview's log to end with \"kickview stopped\"", func() bool {
		b, _ := os.ReadFile(filepath.Join(s.dir, "kickview.log"))
		return strings.Contains(string(b), "kickview stopped")
	})
}

// Official webhooks as the only fast source (realtime off, a slow poll): the
// collector subscribes a streamer as it is added, verifies kicksim's signed
// deliveries, and the session reaches PostgreSQL detected by the webhook.
func TestWebhooksEndToEnd(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := startSystem(t, 3, "KICKMON_STREAMERS=", "KICK_REALTIME=off", "KICKMON_POLL_INTERVAL=60s", "KICKMON_WEBHOOK_ADDR="+addr)
	s.sim("POST", "/webhooks/url", map[string]string{"url": "http://" + addr + "/webhooks/kick"})
	x := s.streamers()[0]
	if out, err := s.ctl("streamers", "add", x.Slug); err != nil {
		t.Fatalf("kickctl add: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "webhook subscriptions for the added streamer", func() bool {
		return strings.Count(string(s.sim("GET", "/webhooks", nil)), fmt.Sprintf(`"BroadcasterUserID":%d`, x.UserID)) >= 2
	})
	s.sim("POST", fmt.Sprintf("/streamers/%d/live", x.UserID), nil)
	waitFor(t, 20*time.Second, "a session detected by the webhook", func() bool {
		rows := s.query(`SELECT detected_by FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1`, x.UserID)
		return len(rows) == 1 && rows[0][0] == "webhook"
	})
	if out, err := s.ctl("status"); err != nil || !strings.Contains(out, "1 accepted") {
		t.Errorf("kickctl status does not show the accepted delivery: %v\n%s", err, out)
	}
}

// A rename on Kick is found by the poller, recorded as STREAMER_RENAMED
// with the old slug, and the row keeps its user id with the new slug.
func TestRenameReachesPostgreSQL(t *testing.T) {
	s := startSystem(t, 3)
	x := s.streamers()[0]
	waitFor(t, 20*time.Second, "streamers in PostgreSQL", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.streamers`) == 3
	})
	s.sim("POST", fmt.Sprintf("/streamers/%d/rename", x.UserID), map[string]string{"slug": "renamed-one"})
	waitFor(t, 20*time.Second, "the new slug in kickmon.streamers", func() bool {
		rows := s.query(`SELECT slug FROM kickmon.streamers WHERE broadcaster_user_id = $1`, x.UserID)
		return len(rows) == 1 && rows[0][0] == "renamed-one"
	})
	rows := s.query(`SELECT previous_slug, state->>'slug' FROM kickmon.status_events WHERE broadcaster_user_id = $1 AND kind = 'STREAMER_RENAMED'`, x.UserID)
	if len(rows) != 1 || rows[0][0] != x.Slug || rows[0][1] != "renamed-one" {
		t.Errorf("STREAMER_RENAMED rows %v, want one from %q to renamed-one", rows, x.Slug)
	}
	if out, err := s.ctl("streamers", "show", "renamed-one"); err != nil || !strings.Contains(out, fmt.Sprint(x.UserID)) {
		t.Errorf("kickctl streamers show renamed-one: %v\n%s", err, out)
	}
}

// With the writer down long enough for the spool bound to drop events, the
// loss is not hidden: the writer records the dropped range as a gap, and
// every seq is either stored or inside a recorded gap.
func TestSpoolOverflowBecomesAGap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the spool")
	}
	s := startSystemSim(t, []string{"--rate", "1500", "--live-fraction", "0.5"}, 300, "KICKMON_SPOOL_MAX_BYTES=1MiB")
	waitFor(t, 30*time.Second, "streamers in PostgreSQL", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.streamers`) == 300
	})
	s.writer.Kill()
	// The first drops can be of events the writer stored but whose ack did
	// not reach the collector before the kill: those are no gap. Wait until
	// the collector dropped past the writer's cursor (read afresh each time:
	// it only grows, and a commit sent before the kill may still land).
	waitFor(t, 90*time.Second, "the collector to drop events the writer has not stored", func() bool {
		sp, err := s.spoolStatus()
		if err != nil {
			return false
		}
		lost := sp.GetLost()
		rows := s.query(`SELECT last_seq - seq_offset FROM kickmon.writer_cursor`)
		if len(lost) == 0 || len(rows) != 1 {
			return false
		}
		cursor := rows[0][0].(int64)
		t.Logf("collector lost %v, writer cursor %d", lost, cursor)
		return lost[len(lost)-1].GetLast() > uint64(cursor)
	})
	s.startWriter()
	waitFor(t, 60*time.Second, "a spool gap in kickmon.coverage_gaps", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.coverage_gaps WHERE source = 'spool'`) > 0
	})
	// Every seq up to the cursor is stored or inside a recorded gap, once.
	waitFor(t, 30*time.Second, "stored + lost = cursor", func() bool {
		stored := s.count(`SELECT count(*) FROM kickmon.status_events WHERE seq <= (SELECT last_seq FROM kickmon.writer_cursor)`)
		lost := s.count(`SELECT coalesce(sum(last_seq - first_seq + 1), 0)::bigint FROM kickmon.coverage_gaps WHERE source = 'spool'`)
		cursor := s.count(`SELECT last_seq FROM kickmon.writer_cursor`)
		return stored >= 0 && lost > 0 && stored+lost == cursor
	})
}

// The collector's state is deleted while both daemons run (the collector
// restarts on an empty state directory, a new event log): the writer
// records the replacement as a gap, follows the new log from its start,
// and every seq up to its cursor is an event, a gap or a quarantined event
// — nothing skipped silently. Streamers live across the loss keep one
// session each.
func TestCollectorStateLost(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the collector and deletes its state")
	}
	s := startSystem(t, 6)
	st := s.streamers()
	waitFor(t, 30*time.Second, "streamers in PostgreSQL", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.streamers`) == int64(len(st))
	})
	for _, x := range st[:3] {
		s.sim("POST", fmt.Sprintf("/streamers/%d/live", x.UserID), nil)
	}
	openSessions := func(n int64) func() bool {
		return func() bool {
			return s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE ended_at IS NULL AND NOT started_at_provisional`) == n
		}
	}
	waitFor(t, 40*time.Second, "three open sessions", openSessions(3))
	caughtUp := func() (logID string, last int64) {
		waitFor(t, 40*time.Second, "writer caught up with the collector", func() bool {
			out, err := s.ctl("status", "-o", "json")
			if err != nil {
				return false
			}
			var acked int64
			_, _ = fmt.Sscan(jsonField(out, "last_seq"), &last)
			_, _ = fmt.Sscan(jsonField(out, "acked_seq"), &acked)
			logID = strings.Trim(jsonField(out, "log_id"), `"`)
			return last > 0 && last == acked && logID != ""
		})
		return logID, last
	}
	oldLog, _ := caughtUp()
	oldCursor := s.count(`SELECT last_seq FROM kickmon.writer_cursor`)

	s.coll.Kill()
	if err := os.RemoveAll(filepath.Join(s.dir, "state")); err != nil {
		t.Fatal(err)
	}
	s.startCollector()
	// Two go offline, one more goes live: the new log has news to carry.
	for _, x := range st[:2] {
		s.sim("POST", fmt.Sprintf("/streamers/%d/offline", x.UserID), nil)
	}
	s.sim("POST", fmt.Sprintf("/streamers/%d/live", st[3].UserID), nil)
	waitFor(t, 60*time.Second, "the new log's news in PostgreSQL", openSessions(2))
	newLog, newLast := caughtUp()
	if newLog == oldLog {
		t.Fatalf("the collector kept log id %s on an empty state directory", newLog)
	}

	rows := s.query(`SELECT first_seq, last_seq, reason FROM kickmon.coverage_gaps WHERE source = 'spool'`)
	if len(rows) != 1 || rows[0][0] != oldCursor+1 || !strings.HasPrefix(rows[0][2].(string), "event log replaced") {
		t.Fatalf("spool gaps = %v; want one at seq %d, reason \"event log replaced…\"", rows, oldCursor+1)
	}
	rows = s.query(`SELECT log_id, seq_offset, last_seq FROM kickmon.writer_cursor`)
	if len(rows) != 1 || rows[0][0] != newLog || rows[0][1] != oldCursor+1 || rows[0][2] != oldCursor+1+newLast {
		t.Errorf("writer_cursor = %v; want log %s, offset %d, last_seq %d", rows, newLog, oldCursor+1, oldCursor+1+newLast)
	}
	// Every seq of the new log is stored (none skipped), and every seq up
	// to the cursor is accounted for once.
	if n := s.count(`SELECT count(*) FROM kickmon.status_events WHERE seq > $1`, oldCursor+1); n != newLast {
		t.Errorf("%d events of the new log stored, it has %d", n, newLast)
	}
	stored := s.count(`SELECT count(*) FROM kickmon.status_events`)
	gaps := s.count(`SELECT coalesce(sum(last_seq - first_seq + 1), 0)::bigint FROM kickmon.coverage_gaps WHERE source = 'spool'`)
	quarantined := s.count(`SELECT count(*) FROM kickmon.quarantine`)
	if cursor := oldCursor + 1 + newLast; stored+gaps+quarantined != cursor {
		t.Errorf("stored %d + gaps %d + quarantined %d != cursor %d", stored, gaps, quarantined, cursor)
	}
	if quarantined != 0 {
		t.Errorf("%d events quarantined after the log change:", quarantined)
		for _, r := range s.query(`SELECT seq, kind, error FROM kickmon.quarantine`) {
			t.Logf("  %v", r)
		}
	}
	// The streamer still live across the loss has one session, not two.
	if n := s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE broadcaster_user_id = $1`, st[2].UserID); n != 1 {
		t.Errorf("%s, live across the loss: %d sessions, want 1", st[2].Slug, n)
	}
}
