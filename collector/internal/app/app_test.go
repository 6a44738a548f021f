package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/collector/kicksim"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
)

// notifications captures sd_notify datagrams as systemd would, on a
// unixgram socket named by NOTIFY_SOCKET.
func notifications(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(tempDir(t), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return ch
}

// nextNotification returns the next datagram that is not a watchdog ping.
func nextNotification(t *testing.T, ch <-chan string, pings *int) string {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			return m
		case <-timer.C:
			t.Fatal("no sd_notify datagram")
			return ""
		}
	}
}

// READY=1 only once the API answers, STATUS lines, watchdog pings while
// healthy, STOPPING=1 on cancel, a nil error, and a socket that is gone
// after shutdown so the next start works.
func TestSystemdNotifications(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3))
	env := simEnv(t, sim)
	env["KICKMON_STREAMERS"] = sim.Streamers()[0].Slug
	ch := notifications(t)
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: a ping every 100 ms
	t.Setenv("WATCHDOG_PID", "")

	for run := 1; run <= 2; run++ { // the second run reuses the socket path and state
		t.Run(fmt.Sprintf("run %d", run), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			stderr := &syncBuffer{}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			go func() { done <- Run(ctx, nil, lookup, io.Discard, stderr) }()
			defer func() {
				if t.Failed() {
					t.Logf("kickcollector log:\n%s", stderr.String())
				}
			}()

			pings := 0
			if got := nextNotification(t, ch, &pings); got != "READY=1" {
				t.Fatalf("first notification %q, want READY=1", got)
			}
			if pings != 0 {
				t.Errorf("%d watchdog pings before READY=1", pings)
			}
			// READY means serving: the socket answers now, without retries.
			conn, err := kickapi.Dial(env["KICKMON_SOCKET"])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.GetStatus(rpcCtx(t), &kickmonv1.GetStatusRequest{}); err != nil {
				t.Fatalf("GetStatus right after READY=1: %v", err)
			}
			status := nextNotification(t, ch, &pings)
			if !strings.HasPrefix(status, "STATUS=watching ") || !strings.Contains(status, "poll ") {
				t.Errorf("notification after READY=1 is %q, want STATUS=watching … with the sources", status)
			}
			eventually(t, "a watchdog ping", func() error {
				for len(ch) > 0 {
					if m := <-ch; m == "WATCHDOG=1" {
						pings++
					}
				}
				if pings == 0 {
					return errors.New("no WATCHDOG=1")
				}
				return nil
			})

			cancel()
			for {
				m := nextNotification(t, ch, &pings)
				if m == "STOPPING=1" {
					break
				}
				if !strings.HasPrefix(m, "STATUS=") {
					t.Fatalf("got %q before STOPPING=1", m)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run after cancel: %v, want nil", err)
				}
			case <-time.After(deadline):
				t.Fatal("Run did not return after cancel")
			}
			if _, err := os.Lstat(env["KICKMON_SOCKET"]); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket after shutdown: %v, want it removed", err)
			}
			for len(ch) > 0 {
				if m := <-ch; m == "READY=1" {
					t.Errorf("READY=1 after shutdown")
				}
			}
		})
	}
}

// With push and poll both on, a streamer going live and offline is one
// session: one STREAM_STARTED, one STREAM_ENDED, one session id, and the
// official start time (push's provisional one corrected).
func TestLiveAndOfflineIsOneSession(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3))
	d := startDaemon(t, simEnv(t, sim))
	s := sim.Streamers()[1]
	w := watch(t, d.conn, 0)
	add(t, d.conn, s)
	waitSubscribed(t, sim, s)
	events := w.until(t, "STREAMER_ADDED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, s.UserID))

	if err := sim.GoLive(s.UserID); err != nil {
		t.Fatal(err)
	}
	events = append(events, w.until(t, "STREAM_STARTED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, s.UserID))...)
	// Let the poller confirm (it checks out of turn after a push report).
	eventually(t, "official start confirmed", func() error {
		st, err := d.conn.GetStreamer(rpcCtx(t), &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_BroadcasterUserId{BroadcasterUserId: s.UserID}})
		if err != nil {
			return err
		}
		if st.GetStreamer().GetSession().GetStartedAtProvisional() {
			return errors.New("start time still provisional")
		}
		return nil
	})
	if err := sim.GoOffline(s.UserID); err != nil {
		t.Fatal(err)
	}
	events = append(events, w.until(t, "STREAM_ENDED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, s.UserID))...)
	// Two more poll rounds: nothing may reopen or repeat the session.
	events = afterPollRounds(t, sim, d.conn, w, events)

	var truth, live kicksim.Transition
	for _, tr := range sim.Truth() {
		switch {
		case tr.UserID == s.UserID && tr.Kind == kicksim.KindOffline:
			truth = tr
		case tr.UserID == s.UserID && tr.Kind == kicksim.KindLive:
			live = tr
		}
	}
	t.Logf("events: %s", describe(events))
	count := map[kickmonv1.EventKind]int{}
	sessions := map[string]bool{}
	for _, e := range events {
		if e.GetStreamer().GetBroadcasterUserId() != s.UserID {
			continue
		}
		count[e.GetKind()]++
		if id := e.GetSession().GetSessionId(); id != "" {
			sessions[id] = true
		}
	}
	if count[kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED] != 1 || count[kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED] != 1 {
		t.Errorf("want one STREAM_STARTED and one STREAM_ENDED, got %s", describe(events))
	}
	if len(sessions) != 1 {
		t.Errorf("want one session id, got %d: %s", len(sessions), describe(events))
	}
	ended := events[slices.IndexFunc(events, kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, s.UserID))]
	if got := ended.GetSession().GetStartedAt().AsTime(); !got.Equal(truth.StartedAt) || ended.GetSession().GetStartedAtProvisional() {
		t.Errorf("ended session started_at %s (provisional %t), want Kick's official %s (push said %s)",
			got, ended.GetSession().GetStartedAtProvisional(), truth.StartedAt, live.PusherCreatedAt)
	}
	if got := ended.GetSession().GetEndedAt().AsTime(); got.Before(truth.StartedAt) || got.After(truth.At.Add(time.Second)) {
		t.Errorf("ended_at %s, want between the start %s and the end %s", got, truth.StartedAt, truth.At)
	}
}

// A watcher that disconnects mid-stream and reconnects from its last seq+1
// gets every later event exactly once.
func TestWatcherResumesFromLastSeq(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(6))
	d := startDaemon(t, simEnv(t, sim))
	all := sim.Streamers()
	add(t, d.conn, all[:3]...)
	waitSubscribed(t, sim, all[:3]...)

	w := watch(t, d.conn, 0)
	first := w.until(t, "three STREAMER_ADDED", func(e *kickmonv1.Event) bool {
		return e.GetKind() == kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED && e.GetStreamer().GetBroadcasterUserId() == all[2].UserID
	})
	// Changes flow while the watcher goes away mid-stream.
	if err := sim.GoLive(all[0].UserID); err != nil {
		t.Fatal(err)
	}
	first = append(first, w.until(t, "STREAM_STARTED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, all[0].UserID))...)
	w.close()
	for len(w.events) > 0 { // what the client had already received
		first = append(first, <-w.events)
	}
	last := first[len(first)-1].GetSeq()

	for _, s := range all[1:3] {
		if err := sim.GoLive(s.UserID); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.SetTitle(all[0].UserID, "resumed"); err != nil {
		t.Fatal(err)
	}
	add(t, d.conn, all[3:5]...)
	eventually(t, "changes observed", func() error {
		resp, err := d.conn.ListStreamers(rpcCtx(t), &kickmonv1.ListStreamersRequest{})
		if err != nil {
			return err
		}
		for _, st := range resp.GetStreamers() {
			switch id := st.GetBroadcasterUserId(); {
			case (id == all[1].UserID || id == all[2].UserID) && st.GetState() != kickmonv1.LiveState_LIVE_STATE_LIVE:
				return fmt.Errorf("%s not live yet", st.GetSlug())
			case id == all[0].UserID && st.GetTitle() != "resumed":
				return fmt.Errorf("%s title %q", st.GetSlug(), st.GetTitle())
			}
		}
		if len(resp.GetStreamers()) != 5 {
			return fmt.Errorf("%d streamers watched", len(resp.GetStreamers()))
		}
		return nil
	})
	end := lastSeq(t, d.conn)
	if end <= last {
		t.Fatalf("no events after the disconnect (last %d, now %d)", last, end)
	}

	again := watch(t, d.conn, last+1).throughSeq(t, end)
	checkContiguous(t, first, first[0].GetSeq(), last)
	checkContiguous(t, again, last+1, end)
}

// The real binary, killed with SIGKILL and restarted on the same state:
// seq continues, the unacknowledged events replay with their original
// seqs, nothing acknowledged comes back as new, the watch list survives.
func TestKillAndRestart(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(4))
	env := simEnv(t, sim)
	all := sim.Streamers()

	p := startProcess(t, env)
	add(t, p.conn, all[:2]...)
	waitSubscribed(t, sim, all[:2]...)
	w := watch(t, p.conn, 0)
	if err := sim.GoLive(all[0].UserID); err != nil {
		t.Fatal(err)
	}
	before := w.until(t, "STREAM_STARTED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, all[0].UserID))
	if err := sim.SetTitle(all[0].UserID, "before the kill"); err != nil {
		t.Fatal(err)
	}
	before = append(before, w.until(t, "title update", func(e *kickmonv1.Event) bool {
		return e.GetKind() == kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED && e.GetStreamer().GetTitle() == "before the kill"
	})...)
	w.close()
	last := before[len(before)-1].GetSeq()
	if len(before) < 4 {
		t.Fatalf("want at least 4 events before the kill, got %s", describe(before))
	}
	acked := before[1].GetSeq()
	if _, err := p.conn.AckEvents(rpcCtx(t), &kickmonv1.AckEventsRequest{Seq: acked}); err != nil {
		t.Fatal(err)
	}
	// The writer's list of confirmation times: trimmed, and a token to ask
	// for changes since, which a restarted collector does not honour.
	confirmations, err := p.conn.ListStreamers(rpcCtx(t), &kickmonv1.ListStreamersRequest{ConfirmationsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := confirmations.GetStreamers(); len(got) != 2 || got[0].GetSlug() != "" || got[0].GetLastConfirmedAt() == nil || confirmations.GetChangesToken() == "" {
		t.Errorf("confirmations only: %v, token %q", got, confirmations.GetChangesToken())
	}
	p.kill(t)

	p = startProcess(t, env)
	// The unacknowledged events, with their original seqs and contents.
	replay := watch(t, p.conn, acked+1).throughSeq(t, last)
	if diff := cmp.Diff(before[2:], replay, protocmp.Transform()); diff != "" {
		t.Errorf("replay from %d after restart differs (-before +after):\n%s", acked+1, diff)
	}
	st, err := p.conn.GetStatus(rpcCtx(t), &kickmonv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.GetStatus().GetSpool().GetAckedSeq(); got != acked {
		t.Errorf("acked seq after restart %d, want %d", got, acked)
	}
	slugs, err := watchedSlugs(rpcCtx(t), p.conn)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(slugsOf(all[:2]...), slugs); diff != "" {
		t.Errorf("watch list after restart (-want +got):\n%s", diff)
	}
	since, err := p.conn.ListStreamers(rpcCtx(t), &kickmonv1.ListStreamersRequest{ConfirmationsOnly: true, ChangedSince: confirmations.GetChangesToken()})
	if err != nil {
		t.Fatal(err)
	}
	if since.GetChangesOnly() || len(since.GetStreamers()) != 2 {
		t.Errorf("changes since a token of the run before the kill: changes_only %v, %d streamers; want the whole list (2)", since.GetChangesOnly(), len(since.GetStreamers()))
	}

	// New events continue the seq and repeat nothing from before the kill.
	w = watch(t, p.conn, last+1)
	if err := sim.GoOffline(all[0].UserID); err != nil {
		t.Fatal(err)
	}
	after := w.until(t, "STREAM_ENDED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, all[0].UserID))
	checkContiguous(t, after, last+1, after[len(after)-1].GetSeq())
	started := before[slices.IndexFunc(before, kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, all[0].UserID))]
	for _, e := range after {
		switch e.GetKind() {
		case kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
			t.Errorf("after restart: %s repeats an event from before the kill", describe([]*kickmonv1.Event{e}))
		case kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
			if got, want := e.GetSession().GetSessionId(), started.GetSession().GetSessionId(); got != want {
				t.Errorf("STREAM_ENDED after restart for session %s, want the session %s started before the kill", got, want)
			}
		}
	}

	// SIGTERM drains: exit status 0, the open stream ends UNAVAILABLE (so
	// the watcher reconnects), and the socket is removed.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(deadline):
		t.Fatal("kickcollector did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status after SIGTERM %d, want 0", code)
	}
	select {
	case err := <-w.done:
		w.done <- err
		if status.Code(err) != codes.Unavailable {
			t.Errorf("watch stream ended with %v, want UNAVAILABLE", err)
		}
	case <-time.After(deadline):
		t.Error("watch stream still open after the collector exited")
	}
	if _, err := os.Lstat(env["KICKMON_SOCKET"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after SIGTERM: %v, want it removed", err)
	}
}

// process is the kickcollector binary running as a child.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	conn   *kickapi.Conn
	exited chan struct{}
}

func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	p := &process{stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(deadline):
				_ = p.cmd.Process.Kill()
				<-p.exited
				t.Error("kickcollector ignored SIGTERM")
			}
		}
		if t.Failed() {
			t.Logf("kickcollector (pid %d) log:\n%s", p.cmd.Process.Pid, p.stderr.String())
		}
	})
	conn, err := kickapi.Dial(env["KICKMON_SOCKET"])
	if err != nil {
		t.Fatal(err)
	}
	p.conn = conn
	t.Cleanup(func() { _ = conn.Close() })
	eventually(t, "kickcollector serving", func() error {
		select {
		case <-p.exited:
			t.Fatalf("kickcollector exited: %v\n%s", p.cmd.ProcessState, p.stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := conn.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
		return err
	})
	return p
}

// kill sends SIGKILL and waits for the process to die.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	_ = p.conn.Close()
}

// KICKMON_STREAMERS with an unknown slug: the others are added, the unknown
// one is logged by slug, and the daemon keeps running. Slugs that fail
// because Kick is unavailable at start are retried.
func TestInitialStreamers(t *testing.T) {
	const unknown = "nobody-streams-here"
	tests := []struct {
		name        string
		unknown     bool
		unavailable int // channels calls answered 503 first
	}{
		{name: "unknown slug", unknown: true},
		{name: "Kick unavailable at start", unavailable: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := kicksim.Start(t, kicksim.WithStreamers(3))
			env := simEnv(t, sim)
			all := sim.Streamers()
			slugs := []string{all[0].Slug, all[2].Slug}
			if tt.unknown {
				slugs = []string{all[0].Slug, unknown, all[2].Slug}
			}
			env["KICKMON_STREAMERS"] = strings.Join(slugs, ",")
			if tt.unavailable > 0 {
				sim.FailNext(kicksim.EndpointChannels, tt.unavailable, kicksim.Fault503)
			}
			d := startDaemon(t, env)

			eventually(t, "known streamers added", func() error {
				slugs, err := watchedSlugs(rpcCtx(t), d.conn)
				if err != nil {
					return err
				}
				if want := slugsOf(all[0], all[2]); !slices.Equal(slugs, want) {
					return fmt.Errorf("watching %q, want %q", slugs, want)
				}
				return nil
			})
			if tt.unknown {
				eventually(t, "unknown slug logged", func() error {
					if _, ok := d.stderr.logLine(func(m map[string]any) bool { return m["slug"] == unknown && m["level"] == "ERROR" }); !ok {
						return fmt.Errorf("no ERROR line with slug %q", unknown)
					}
					return nil
				})
			}
			if _, ok := d.stderr.logLine(func(m map[string]any) bool { return m["msg"] == "KICKMON_STREAMERS: will retry" }); ok != (tt.unavailable > 0) {
				t.Errorf("retry logged: %t, want %t", ok, tt.unavailable > 0)
			}
			if _, err := d.conn.GetStatus(rpcCtx(t), &kickmonv1.GetStatusRequest{}); err != nil {
				t.Errorf("GetStatus: %v", err)
			}
			select {
			case err := <-d.done:
				d.done <- err
				t.Errorf("Run returned: %v", err)
			default:
			}
		})
	}
}

// A bad configuration stops Run before anything starts, with one error that
// names every problem and never the client secret.
func TestBadConfiguration(t *testing.T) {
	const secret = "s3cret-never-shown"
	dir := tempDir(t)
	valid := func() map[string]string {
		return map[string]string{
			"KICK_CLIENT_ID":     "id",
			"KICK_CLIENT_SECRET": secret,
			"KICKMON_SOCKET":     filepath.Join(dir, "k.sock"),
			"KICKMON_STATE_DIR":  filepath.Join(dir, "state"),
		}
	}
	tests := []struct {
		name string
		set  map[string]string
		del  []string
		want []string
	}{
		{
			name: "several invalid variables",
			set: map[string]string{
				"KICKMON_POLL_INTERVAL":   "100ms",
				"KICK_API_URL":            "http://api.example",
				"KICKMON_SOCKET":          "relative.sock",
				"KICKMON_METRICS_ADDR":    "no-port",
				"KICKMON_SPOOL_MAX_BYTES": "lots",
				"KICKMON_LOG_LEVEL":       "chatty",
				"KICKMON_OFFLINE_GRACE":   "soon",
			},
			want: []string{"KICKMON_POLL_INTERVAL", "KICK_API_URL", "KICKMON_SOCKET", "KICKMON_METRICS_ADDR",
				"KICKMON_SPOOL_MAX_BYTES", "KICKMON_LOG_LEVEL", "KICKMON_OFFLINE_GRACE"},
		},
		{
			name: "missing client id, bad pusher URL and slug",
			set:  map[string]string{"KICK_PUSHER_URL": "https://not-a-websocket", "KICKMON_STREAMERS": "ok,not a slug!"},
			del:  []string{"KICK_CLIENT_ID"},
			want: []string{"KICK_CLIENT_ID", "KICK_PUSHER_URL", "KICKMON_STREAMERS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := valid()
			for k, v := range tt.set {
				env[k] = v
			}
			for _, k := range tt.del {
				delete(env, k)
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			done := make(chan error, 1)
			stderr := &syncBuffer{}
			go func() { done <- Run(context.Background(), nil, lookup, io.Discard, stderr) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(deadline):
				t.Fatal("Run with a bad configuration did not return")
			}
			if err == nil {
				t.Fatal("Run accepted a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error()+stderr.String(), secret) {
				t.Errorf("the client secret leaked:\n%v\n%s", err, stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "state")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("state directory touched by a rejected configuration: %v", err)
			}

			// The binary exits 1 at once with the same list.
			cmd := exec.Command(binary)
			cmd.Env = nil
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, cerr := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(cerr, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("kickcollector: %v, want exit status 1\n%s", cerr, out)
			}
			if !strings.HasPrefix(string(out), "kickcollector: invalid configuration") {
				t.Errorf("kickcollector printed %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("kickcollector output does not name %s:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), secret) {
				t.Errorf("the client secret leaked:\n%s", out)
			}
		})
	}
}

// /metrics and /healthz: healthy while the poller works; 503 and the poll
// source BLOCKED once every channels call answers Cloudflare's 403 page.
func TestMetricsAndHealth(t *testing.T) {
	tests := []struct {
		name   string
		pusher bool
		live   int // of the 2 watched streamers
	}{
		{name: "poll only", live: 1},
		// Pusher on but no channel id known: it sees nobody, so it must not
		// keep /healthz green on its own.
		{name: "pusher without channels", pusher: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := kicksim.Start(t, kicksim.WithStreamers(3), kicksim.WithLiveFraction(0))
			env := simEnv(t, sim)
			env["KICKMON_METRICS_ADDR"] = "127.0.0.1:0"
			env["KICKMON_MEMORY_LIMIT"] = "300MiB"
			env["KICKMON_STREAMERS"] = sim.Streamers()[0].Slug + "," + sim.Streamers()[1].Slug
			for _, st := range sim.Streamers()[:tt.live] {
				if err := sim.GoLive(st.UserID); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.pusher {
				env["KICK_REALTIME"] = "off"
			}
			d := startDaemon(t, env)
			line, ok := d.stderr.logLine(func(m map[string]any) bool { return m["msg"] == "metrics listening" })
			if !ok {
				eventually(t, "metrics listening", func() error {
					if line, ok = d.stderr.logLine(func(m map[string]any) bool { return m["msg"] == "metrics listening" }); !ok {
						return errors.New("not logged yet")
					}
					return nil
				})
			}
			base := fmt.Sprintf("http://%s", line["addr"])
			client := &http.Client{Timeout: 5 * time.Second}
			t.Cleanup(client.CloseIdleConnections)
			get := func(path string) (int, string, error) {
				resp, err := client.Get(base + path)
				if err != nil {
					return 0, "", err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b), err
			}

			eventually(t, "events counted and healthy", func() error {
				code, body, err := get("/metrics")
				if err != nil || code != http.StatusOK || !strings.Contains(body, `kickmon_collector_events_total{kind="STREAMER_ADDED"`) ||
					!strings.Contains(body, `kickmon_collector_api_requests_total{endpoint="channels",outcome="ok"}`) {
					return fmt.Errorf("/metrics: %d %v, STREAMER_ADDED not counted", code, err)
				}
				// The watch list's gauges (they once always read 0).
				for _, want := range []string{"\nkickmon_collector_streamers 2\n", fmt.Sprintf("\nkickmon_collector_streamers_live %d\n", tt.live)} {
					if !strings.Contains(body, want) {
						return fmt.Errorf("/metrics lacks %q", strings.TrimSpace(want))
					}
				}
				if !strings.Contains(body, "\ngo_gc_gomemlimit_bytes 3.145728e+08\n") {
					return errors.New("/metrics: the runtime's memory limit is not KICKMON_MEMORY_LIMIT (300MiB)")
				}
				if tt.pusher && !strings.Contains(body, `kickmon_collector_realtime_provider{provider="centrifugo"} 1`) {
					return errors.New("/metrics does not name the realtime provider in use (Centrifugo, negotiated with kicksim)")
				}
				if code, body, err := get("/healthz"); err != nil || code != http.StatusOK {
					return fmt.Errorf("/healthz: %d %v %s", code, err, body)
				}
				return nil
			})

			sim.FailNext(kicksim.EndpointChannels, 1000, kicksim.Fault403HTML)
			eventually(t, "unhealthy and the poller blocked", func() error {
				if code, body, err := get("/healthz"); err != nil || code != http.StatusServiceUnavailable {
					return fmt.Errorf("/healthz: %d %v %s", code, err, body)
				}
				st, err := d.conn.GetStatus(rpcCtx(t), &kickmonv1.GetStatusRequest{})
				if err != nil {
					return err
				}
				for _, s := range st.GetStatus().GetSources() {
					if s.GetSource() == kickmonv1.Source_SOURCE_POLL && s.GetHealth() != kickmonv1.Health_HEALTH_BLOCKED {
						return fmt.Errorf("poll source %s: %s", s.GetHealth(), s.GetDetail())
					}
				}
				return nil
			})
		})
	}
}

// A second kickcollector on the same state or socket, or with a metrics
// address in use, stops at once with a clear error and leaves the first
// one serving.
func TestStartRefused(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	first := startDaemon(t, simEnv(t, sim))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		set  func(env map[string]string)
		want string
	}{
		{"same state directory", func(env map[string]string) { env["KICKMON_STATE_DIR"] = first.env["KICKMON_STATE_DIR"] },
			filepath.Join(first.env["KICKMON_STATE_DIR"], "spool.db") + " is locked by another process"},
		{"same socket", func(env map[string]string) { env["KICKMON_SOCKET"] = first.env["KICKMON_SOCKET"] },
			"another process answers"},
		{"metrics address in use", func(env map[string]string) { env["KICKMON_METRICS_ADDR"] = busy.Addr().String() },
			"metrics listen " + busy.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := simEnv(t, sim)
			tt.set(env)
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- Run(ctx, nil, lookup, io.Discard, io.Discard) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Run: %v, want an error containing %q", err, tt.want)
				}
			case <-time.After(deadline):
				t.Fatal("Run did not return")
			}
			if _, err := first.conn.GetStatus(rpcCtx(t), &kickmonv1.GetStatusRequest{}); err != nil {
				t.Errorf("the first collector stopped answering: %v", err)
			}
		})
	}
}

// A corrupt spool is a start-up error naming the file; it is not reset.
func TestCorruptSpool(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	env := simEnv(t, sim)
	path := filepath.Join(env["KICKMON_STATE_DIR"], "spool.db")
	garbage := []byte(strings.Repeat("not a bbolt file\n", 1000))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	err := Run(context.Background(), nil, lookup, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Run: %v, want an error naming %s", err, path)
	}
	if got, err := os.ReadFile(path); err != nil || !slices.Equal(got, garbage) {
		t.Errorf("the corrupt spool was changed (%v)", err)
	}
	if _, err := os.Lstat(env["KICKMON_SOCKET"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket created by a collector that cannot start: %v", err)
	}
}

// holdingProxy forwards to Kick (kicksim) and, once armed, holds the next
// poll answer (channels by broadcaster_user_id) after Kick has written it:
// an answer that was true when sent but is stale when it arrives.
type holdingProxy struct {
	armed   chan struct{} // a send arms the proxy
	held    chan struct{} // closed when an answer is held
	release chan struct{} // closed to let it go
}

func startHoldingProxy(t *testing.T, target string) (*holdingProxy, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	h := &holdingProxy{armed: make(chan struct{}, 1), held: make(chan struct{}), release: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/public/v1/channels" || !resp.Request.URL.Query().Has("broadcaster_user_id") {
			return nil
		}
		select {
		case <-h.armed:
		default:
			return nil
		}
		body, err := io.ReadAll(resp.Body) // what Kick said at the time
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		close(h.held)
		<-h.release
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	return h, srv.URL
}

// A poll answer that left Kick before the stream started but arrives after
// Pusher reported it live must not end the new session (design: one
// STREAM_STARTED and one STREAM_ENDED per session, with push and poll on).
func TestStalePollAnswerDoesNotEndSession(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3))
	env := simEnv(t, sim)
	proxy, proxyURL := startHoldingProxy(t, sim.APIURL())
	env["KICK_API_URL"] = proxyURL
	d := startDaemon(t, env)
	s := sim.Streamers()[1]
	w := watch(t, d.conn, 0)
	add(t, d.conn, s)
	waitSubscribed(t, sim, s)
	events := w.until(t, "STREAMER_ADDED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, s.UserID))

	proxy.armed <- struct{}{}
	select {
	case <-proxy.held: // Kick answered "offline"; the answer is on its way
	case <-time.After(deadline):
		t.Fatal("no poll request")
	}
	if err := sim.GoLive(s.UserID); err != nil {
		t.Fatal(err)
	}
	events = append(events, w.until(t, "STREAM_STARTED", kindFor(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, s.UserID))...)
	close(proxy.release)
	// The next poll rounds confirm the session; nothing may end it.
	events = afterPollRounds(t, sim, d.conn, w, events)
	for _, e := range events {
		if e.GetKind() == kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED {
			t.Errorf("the live session was ended by a stale poll answer: %s", describe(events))
		}
	}
}
