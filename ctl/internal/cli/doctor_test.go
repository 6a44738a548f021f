package cli

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"google.golang.org/protobuf/types/known/durationpb"
)

const centrifugo = kickmonv1.Source_SOURCE_CENTRIFUGO

// healthyStatus is a collector with nothing to complain about.
func healthyStatus() *kickmonv1.CollectorStatus {
	st := testStatus()
	st.Sources[1] = &kickmonv1.SourceStatus{Source: centrifugo, Health: kickmonv1.Health_HEALTH_OK, Detail: "2 sockets up", LastSuccessAt: at(time.Second), StreamersCovered: 3}
	st.Budget.BackoffUntil = nil
	st.Realtime = &kickmonv1.RealtimeStatus{Mode: "auto", Provider: "centrifugo", ProviderSince: at(3 * time.Hour), Health: kickmonv1.Health_HEALTH_OK, Negotiated: true}
	st.Spool.Lost = nil
	st.KickClockSkew = durationpb.New(400 * time.Millisecond)
	return st
}

// seenStreamers are alice, bob and carol, all seen by the realtime feed.
func seenStreamers() []*kickmonv1.Streamer {
	list := []*kickmonv1.Streamer{alice(), bob(), carol()}
	for _, s := range list {
		s.Coverage = []*kickmonv1.Coverage{
			{Source: poll, Since: at(time.Hour)},
			{Source: centrifugo, Since: at(time.Hour)},
		}
	}
	return list
}

// doctorFixture is a fake collector in the healthy state, followed by a
// writer (an open WatchEvents stream), for tweaking by each test.
func doctorFixture(t *testing.T) *kickapitest.Server {
	t.Helper()
	srv := kickapitest.NewServer(t)
	srv.SetStreamers(seenStreamers()...)
	srv.SetStatus(healthyStatus())
	_, err := srv.Dial(t).WatchEvents(t.Context(), &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the writer's stream", func() bool {
		st, err := srv.Dial(t).GetStatus(t.Context(), &kickmonv1.GetStatusRequest{})
		return err == nil && st.GetStatus().GetWatchers() == 1
	})
	return srv
}

func TestDoctorGolden(t *testing.T) {
	status := func(edit func(st *kickmonv1.CollectorStatus)) func(*kickapitest.Server) {
		return func(srv *kickapitest.Server) {
			st := healthyStatus()
			edit(st)
			srv.SetStatus(st)
		}
	}
	realtimeBlind := func(srv *kickapitest.Server) {
		status(func(st *kickmonv1.CollectorStatus) {
			st.Realtime = &kickmonv1.RealtimeStatus{Mode: "auto", Health: kickmonv1.Health_HEALTH_DOWN,
				BlindReason: "negotiation: 403 blocked", LastNegotiationAt: at(time.Minute),
				LastNegotiationError: "403 Forbidden (Cloudflare)", StreamersBlind: 3}
			st.Sources[1].Health = kickmonv1.Health_HEALTH_DOWN
		})(srv)
		list := seenStreamers()
		for _, s := range list {
			s.Coverage[1].Blind, s.Coverage[1].Reason = true, "negotiation: 403 blocked"
		}
		srv.SetStreamers(list...)
	}
	stale := staleSocket(t)
	tests := []struct {
		name     string
		args     []string
		setup    func(*kickapitest.Server)
		notifier *kickmonv1.GetNotifierStatusResponse // nil: healthyNotifier
		notify   string                               // kicknotify's socket: "none" (nothing there), a path, else the fake's
		code     int
	}{
		{name: "doctor_healthy", args: []string{"doctor"}},
		{name: "doctor_healthy_json", args: []string{"doctor", "-o", "json"}},
		{name: "doctor_collector_down", args: []string{"doctor"}, setup: func(s *kickapitest.Server) { s.Stop() }, code: ExitError},
		{name: "doctor_collector_down_json", args: []string{"doctor", "-o", "json"}, setup: func(s *kickapitest.Server) { s.Stop() }, code: ExitError},
		{name: "doctor_token_failing", args: []string{"doctor"}, code: ExitError, setup: status(func(st *kickmonv1.CollectorStatus) {
			st.Token = &kickmonv1.TokenStatus{Renewals: 0, LastError: "token endpoint: 401 invalid_client"}
			st.Sources[0].Health, st.Sources[0].LastError, st.Sources[0].LastErrorAt = kickmonv1.Health_HEALTH_DOWN, "no token", at(5*time.Second)
			st.KickClockSkew = nil
		})},
		{name: "doctor_realtime_blind", args: []string{"doctor"}, setup: realtimeBlind, code: ExitError},
		{name: "doctor_realtime_blind_json", args: []string{"doctor", "-o", "json"}, setup: realtimeBlind, code: ExitError},
		{name: "doctor_warnings", args: []string{"doctor"}, setup: func(srv *kickapitest.Server) {
			status(func(st *kickmonv1.CollectorStatus) {
				st.Spool.SizeBytes = st.Spool.MaxBytes * 85 / 100
				st.Spool.OldestUnackedAt = at(45 * time.Second)
				st.Spool.Lost = []*kickmonv1.SeqRange{{First: 1, Last: 2}}
				st.KickClockSkew = durationpb.New(-5 * time.Second)
				st.Sources[0].BreakerState = "channels=closed livestreams=half-open"
				st.Webhooks = &kickmonv1.WebhookStatus{Subscribed: 2, Unsubscribed: 1, LastDeliveryAt: at(10 * time.Minute), LastError: "subscribe bob: 400 bad request"}
			})(srv)
			srv.Publish(testEvents()[:2]...)
			list := seenStreamers()
			list[1].Coverage[1].Blind, list[1].Coverage[1].Reason = true, "no channel id"
			srv.SetStreamers(list...)
		}},
		{name: "doctor_old_collector", args: []string{"doctor"}, setup: func(srv *kickapitest.Server) {
			st := testStatus() // no realtime, webhooks or clock skew: a collector from before them
			st.Realtime = nil
			srv.SetStatus(st)
		}},
		{name: "doctor_warnings_strict", args: []string{"doctor", "--strict"}, code: ExitError, setup: status(func(st *kickmonv1.CollectorStatus) {
			st.KickClockSkew = durationpb.New(5 * time.Second)
		})},
		{name: "doctor_writer_stalled", args: []string{"doctor"}, code: ExitError, setup: func(srv *kickapitest.Server) {
			status(func(st *kickmonv1.CollectorStatus) {
				st.Spool.SizeBytes = st.Spool.MaxBytes - 1
				st.Spool.OldestUnackedAt = at(20 * time.Minute)
				st.Spool.AckedAt = at(20 * time.Minute)
				st.KickClockSkew = durationpb.New(3 * time.Minute)
				st.Budget.UsedLastMinute = 600
				st.Budget.RateLimitedTotal = 4
				st.Sources[0].Health = kickmonv1.Health_HEALTH_RATE_LIMITED
				st.Sources[0].LastError, st.Sources[0].LastErrorAt = "429 Too Many Requests", at(20*time.Second)
				st.Webhooks = &kickmonv1.WebhookStatus{Subscribed: 1, Unsubscribed: 2, CapReached: true}
			})(srv)
			srv.Publish(testEvents()...)
		}},
		{name: "doctor_notifier_not_running", args: []string{"doctor"}, notify: "none"},
		{name: "doctor_notifier_stale", args: []string{"doctor"}, notify: stale},
		{name: "doctor_notifier_failing", args: []string{"doctor"}, notifier: testNotifierStatus(), code: ExitError},
		{name: "doctor_notifier_failing_json", args: []string{"doctor", "-o", "json"}, notifier: testNotifierStatus(), code: ExitError},
		{name: "doctor_notifier_warnings", args: []string{"doctor"}, notifier: flakyNotifier()},
		{name: "doctor_notifier_skipped", args: []string{"doctor", "--notify-socket", ""}, notify: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := doctorFixture(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			var stdout, stderr syncBuffer
			e := testEnv(srv.Path(), &stdout, &stderr)
			switch tt.notify {
			case "":
				st := tt.notifier
				if st == nil {
					st = healthyNotifier()
				}
				e.notifySocket = startFakeNotifier(t, st)
			case "none":
				e.notifySocket = "/nonexistent/kickmon-notify/notify.sock"
			default:
				e.notifySocket = tt.notify
			}
			code := e.run(t.Context(), tt.args)
			r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			if r.code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			got := r.golden(srv.Path(), tt.args)
			if e.notifySocket != "" { // --notify-socket '' empties it
				got = strings.ReplaceAll(got, e.notifySocket, "$NOTIFY_SOCKET")
			}
			checkGolden(t, tt.name, got)
		})
	}
}

// healthyNotifier is a kicknotify whose targets all deliver.
func healthyNotifier() *kickmonv1.GetNotifierStatusResponse {
	return &kickmonv1.GetNotifierStatusResponse{StartedAt: at(time.Hour), Targets: []*kickmonv1.TargetStatus{
		{Name: "team-discord", Type: "discord", Delivered: 14, LastDeliveredAt: at(3 * time.Minute)},
		{Name: "ops-hook", Type: "webhook", Delivered: 20, LastDeliveredAt: at(3 * time.Minute),
			LastError: "webhook target answered 502 Bad Gateway", LastErrorAt: at(30 * time.Minute)}, // retried and delivered since
	}}
}

// flakyNotifier has a target that gave a delivery up but delivers again, one
// failing now with retries left, and a backlog over notifyBacklogWarn.
func flakyNotifier() *kickmonv1.GetNotifierStatusResponse {
	st := healthyNotifier()
	st.EventsPending, st.OldestPendingAt = 2, at(7*time.Minute)
	st.Targets[0].Failed = 1
	st.Targets[0].LastError, st.Targets[0].LastErrorAt = "discord target answered 429 Too Many Requests", at(time.Hour)
	st.Targets[1].Retrying = 2
	st.Targets[1].LastError, st.Targets[1].LastErrorAt = "webhook target answered 503 Service Unavailable", at(40*time.Second)
	return st
}

// staleSocket is the path of a socket nobody listens on any more.
func staleSocket(t *testing.T) string {
	t.Helper()
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
	return stale
}

// TestJudgeNotifier: the thresholds of the notifier check.
func TestJudgeNotifier(t *testing.T) {
	target := func(edit func(*kickmonv1.TargetStatus)) *kickmonv1.GetNotifierStatusResponse {
		st := healthyNotifier()
		edit(st.Targets[1])
		return st
	}
	backlog := func(d time.Duration) *kickmonv1.GetNotifierStatusResponse {
		st := healthyNotifier()
		st.OldestPendingAt = at(d)
		return st
	}
	tests := []struct {
		name  string
		st    *kickmonv1.GetNotifierStatusResponse
		state checkState
		says  string
	}{
		{"healthy, an old error retried and delivered", healthyNotifier(), checkOK, "2 targets"},
		{"nothing configured", &kickmonv1.GetNotifierStatusResponse{}, checkOK, "0 targets"},
		{"backlog under the warning", backlog(notifyBacklogWarn - time.Second), checkOK, "oldest waiting since"},
		{"backlog at the warning", backlog(notifyBacklogWarn), checkWarn, "oldest waiting since"},
		{"backlog at the failure", backlog(notifyBacklogFail), checkFail, "oldest waiting since"},
		{"given up, error after the last delivery", target(func(x *kickmonv1.TargetStatus) {
			x.Failed, x.LastErrorAt = 3, at(time.Minute)
		}), checkFail, "ops-hook keeps failing (3 given up in 24h"},
		{"given up, never delivered", target(func(x *kickmonv1.TargetStatus) {
			x.Failed, x.Delivered, x.LastDeliveredAt, x.LastErrorAt = 1, 0, nil, at(time.Minute)
		}), checkFail, "keeps failing"},
		{"given up, delivering again", target(func(x *kickmonv1.TargetStatus) { x.Failed = 1 }), checkWarn, "gave up 1 delivery in 24h, delivering again"},
		{"given up, error forgotten by a restart", target(func(x *kickmonv1.TargetStatus) {
			x.Failed, x.LastError, x.LastErrorAt = 2, "", nil
		}), checkWarn, "gave up 2 deliveries"},
		{"retrying after an error", target(func(x *kickmonv1.TargetStatus) {
			x.Retrying, x.LastErrorAt = 1, at(time.Second)
		}), checkWarn, "ops-hook failing, 1 retrying"},
		{"retrying, delivered since the error", target(func(x *kickmonv1.TargetStatus) { x.Retrying = 1 }), checkOK, "1 retrying"},
	}
	e := testEnv("", &syncBuffer{}, &syncBuffer{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.judgeNotifier(tt.st)
			if c.State != tt.state || !strings.Contains(c.Summary, tt.says) || (c.State == checkOK) != (c.Fix == "") {
				t.Errorf("got %+v, want %s saying %q (a fix exactly when not ok)", c, tt.state, tt.says)
			}
		})
	}
}

// TestDoctorJSONAgreesWithExitCode: "ok" is false exactly when doctor exits 1
// without --strict, and every check has a state scripts know.
func TestDoctorJSONAgreesWithExitCode(t *testing.T) {
	for _, valid := range []bool{true, false} {
		srv := doctorFixture(t)
		st := healthyStatus()
		st.Token.Valid = valid
		srv.SetStatus(st)
		r := run(t, t.Context(), srv.Path(), "doctor", "-o", "json")
		var rep doctorReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("doctor -o json is not JSON: %v\n%s", err, r.stdout)
		}
		if rep.OK != (r.code == ExitOK) || rep.OK != valid {
			t.Errorf("token valid=%v: ok=%v, exit %d", valid, rep.OK, r.code)
		}
		for _, c := range rep.Checks {
			if c.State != checkOK && c.State != checkWarn && c.State != checkFail {
				t.Errorf("check %s: state %q", c.Name, c.State)
			}
			if (c.State == checkOK) != (c.Fix == "") {
				t.Errorf("check %s is %s with fix %q: a fix is given exactly when something is wrong", c.Name, c.State, c.Fix)
			}
		}
	}
}

// TestDoctorSocketFixes: each reason the collector cannot be reached gets
// its own fix.
func TestDoctorSocketFixes(t *testing.T) {
	stale := staleSocket(t)
	tests := []struct {
		name, socket, summary, fix string
	}{
		{"missing", filepath.Join(t.TempDir(), "none.sock"), "no such file", "systemctl start kickmon-collector"},
		{"stale", stale, "stale socket", "restart kickmon-collector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, t.Context(), tt.socket, "doctor", "-o", "json")
			if r.code != ExitError {
				t.Errorf("exit %d, want %d", r.code, ExitError)
			}
			var rep doctorReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("%v\n%s", err, r.stdout)
			}
			sock := rep.Checks[0]
			if sock.Name != "socket" || sock.State != checkFail || !strings.Contains(sock.Summary, tt.summary) || !strings.Contains(sock.Fix, tt.fix) {
				t.Errorf("socket check %+v, want a failure saying %q, fixed by %q", sock, tt.summary, tt.fix)
			}
		})
	}
}

func TestSocketAccess(t *testing.T) {
	const owner, group = 990, 991
	tests := []struct {
		name  string
		uid   int
		gids  []int
		state checkState
		says  string
	}{
		{"collector's user", owner, nil, checkOK, "collector's user"},
		{"root", 0, []int{0}, checkOK, "root"},
		{"group member", 1000, []int{1000, group}, checkOK, "in group kickmon"},
		{"outsider", 1000, []int{1000, 27}, checkWarn, "not in group kickmon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := socketAccess(tt.uid, tt.gids, owner, group, "kickmon")
			if c.State != tt.state || !strings.Contains(c.Summary, tt.says) {
				t.Errorf("got %+v, want %s saying %q", c, tt.state, tt.says)
			}
			if want := tt.state == checkWarn; want != strings.Contains(c.Fix, "usermod -aG kickmon") {
				t.Errorf("fix %q", c.Fix)
			}
		})
	}
}

func TestBlindRealtimeGroupsByReason(t *testing.T) {
	mk := func(slug string, src kickmonv1.Source, reason string) *kickmonv1.Streamer {
		return &kickmonv1.Streamer{Slug: slug, Coverage: []*kickmonv1.Coverage{{Source: poll}, {Source: src, Blind: true, Reason: reason}}}
	}
	d := diagnosis{streamers: []*kickmonv1.Streamer{
		mk("a", centrifugo, "no channel id"), mk("b", pusher, "socket down"), mk("c", centrifugo, "no channel id"),
		mk("d", kickmonv1.Source_SOURCE_WEBHOOK, "not subscribed"), // not realtime
		{Slug: "e", Coverage: []*kickmonv1.Coverage{{Source: centrifugo}}},
	}}
	want := []blindGroup{{reason: "no channel id", slugs: []string{"a", "c"}}, {reason: "socket down", slugs: []string{"b"}}}
	if diff := cmp.Diff(want, d.blindRealtime(), cmp.AllowUnexported(blindGroup{})); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}
