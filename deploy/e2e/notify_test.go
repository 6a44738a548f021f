package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/deploy/internal/proc"
)

// fakeTarget stands in for Discord, Slack or a webhook receiver: it answers
// the first len(script) requests with the scripted statuses, then 204, and
// records the idempotency key of every request it accepted.
type fakeTarget struct {
	mu       sync.Mutex
	script   []int
	secret   string // webhook: check X-Kickmon-Signature
	wire     int    // requests seen
	accepted []string
	bodies   map[string][]byte // the last accepted body of each key
	bad      []string          // requests that broke the contract
	srv      *httptest.Server
}

func newFakeTarget(t *testing.T, secret string, script ...int) *fakeTarget {
	f := &fakeTarget{script: script, secret: secret, bodies: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("X-Kickmon-Delivery")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.wire++
		if key == "" {
			f.bad = append(f.bad, "a request without X-Kickmon-Delivery")
		}
		if f.secret != "" {
			m := hmac.New(sha256.New, []byte(f.secret))
			m.Write(body)
			if r.Header.Get("X-Kickmon-Signature") != hex.EncodeToString(m.Sum(nil)) {
				f.bad = append(f.bad, key+": bad signature")
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
		}
		if len(f.script) > 0 {
			status := f.script[0]
			f.script = f.script[1:]
			if status == http.StatusTooManyRequests {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, `{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}`)
				return
			}
			w.WriteHeader(status)
			return
		}
		f.accepted = append(f.accepted, key)
		f.bodies[key] = body
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// keys is the set of accepted idempotency keys: what a receiver that
// de-duplicates by key shows.
func (f *fakeTarget) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.accepted)
	slices.Sort(out)
	return slices.Compact(out)
}

func (f *fakeTarget) body(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

func (f *fakeTarget) stats() (wire, accepted int, bad []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wire, len(f.accepted), slices.Clone(f.bad)
}

// Every session start in kicksim's ground truth reaches every matching
// target exactly once after de-duplication by X-Kickmon-Delivery, through
// kill -9 of kicknotify and of the writer mid-stream and targets answering
// 429 (with retry_after) and 500 for a while.
func TestNotificationsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system and kills daemons")
	}
	s := startSystem(t, 6)
	st := s.streamers()
	waitFor(t, 30*time.Second, "streamers in PostgreSQL", func() bool {
		return s.count(`SELECT count(*) FROM kickmon.streamers`) == int64(len(st))
	})
	discord := newFakeTarget(t, "", 429, 429, 429, 500)
	slack := newFakeTarget(t, "", 500, 500, 500)
	hook := newFakeTarget(t, "s3cret")
	picked := []string{st[0].Slug, st[1].Slug, st[2].Slug}
	cfg := filepath.Join(s.dir, "notify.yaml")
	writeFile(t, cfg, fmt.Sprintf(`targets:
  - name: team-discord
    type: discord
    url: %s/api/webhooks/1/tok
  - name: team-slack
    type: slack
    url_file: slack-url
    streamers: [%s]
  - name: hook
    type: webhook
    url: %s/hook
    secret_file: hook-secret
    events: [live, offline]
`, discord.srv.URL, strings.Join(picked, ", "), hook.srv.URL))
	writeFile(t, filepath.Join(s.dir, "slack-url"), slack.srv.URL+"/services/T/B/x")
	writeFile(t, filepath.Join(s.dir, "hook-secret"), "s3cret\n")
	env := []string{"KICKMON_DATABASE_URL=" + s.db.URL, "KICKMON_NOTIFY_CONFIG=" + cfg,
		"KICKMON_NOTIFY_SOCKET=" + filepath.Join(s.dir, "n.sock"), "KICKMON_LOG_LEVEL=debug", "KICKMON_NOTIFY_TIMEOUT=3s"}
	var notifier *proc.Process
	startNotifier := func() {
		notifier = s.start(proc.Spec{Name: "kicknotify", Path: filepath.Join(bin, "kicknotify"), Env: env})
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(s.dir, "kicknotify.log")); err == nil {
				t.Logf("kicknotify.log (last 6 KiB):\n%s", tail(b, 6144))
			}
		}
	})
	startNotifier()

	flip := func(verb string) {
		for _, x := range st {
			s.sim("POST", fmt.Sprintf("/streamers/%d/%s", x.UserID, verb), nil)
		}
	}
	sessions := func(n int64) func() bool {
		return func() bool { return s.count(`SELECT count(*) FROM kickmon.stream_sessions`) == n }
	}
	open := func(n int64) func() bool {
		return func() bool {
			return s.count(`SELECT count(*) FROM kickmon.stream_sessions WHERE ended_at IS NULL`) == n
		}
	}
	// Round 1: go live; kicknotify dies with deliveries in flight.
	flip("live")
	waitFor(t, 60*time.Second, "first sessions", sessions(int64(len(st))))
	waitFor(t, 60*time.Second, "a delivery on the wire", func() bool { w, _, _ := hook.stats(); return w > 0 })
	notifier.Kill()
	startNotifier()
	// Round 2: offline, with the writer killed mid-stream.
	flip("offline")
	s.writer.Kill()
	s.startWriter()
	waitFor(t, 60*time.Second, "sessions ended", open(0))
	// Round 3: live again (a second session each), both daemons killed.
	flip("live")
	s.writer.Kill()
	notifier.Kill()
	s.startWriter()
	startNotifier()
	waitFor(t, 60*time.Second, "second sessions", sessions(2*int64(len(st))))

	// The truth: kicksim's session starts, which kickmon must have stored
	// once each as STREAM_STARTED; the keys every target must show.
	var truth []string
	for _, tr := range s.truth() {
		if tr.Kind == "live" {
			truth = append(truth, fmt.Sprintf("%d@%s", tr.UserID, tr.StartedAt.UTC().Format(time.RFC3339)))
		}
	}
	if len(truth) != 2*len(st) {
		t.Fatalf("kicksim's truth has %d session starts, want %d", len(truth), 2*len(st))
	}
	type started struct {
		seq  int64
		slug string
	}
	var starts []started
	var stored []string
	for _, r := range s.query(`SELECT e.seq, e.state->>'slug', e.broadcaster_user_id, ss.started_at FROM kickmon.status_events e
JOIN kickmon.stream_sessions ss ON ss.session_id = e.state->'session'->>'session_id' WHERE e.kind = 'STREAM_STARTED' ORDER BY e.seq`) {
		starts = append(starts, started{r[0].(int64), r[1].(string)})
		stored = append(stored, fmt.Sprintf("%d@%s", r[2].(int64), r[3].(time.Time).UTC().Format(time.RFC3339)))
	}
	slices.Sort(truth)
	slices.Sort(stored)
	if d := cmp.Diff(truth, stored); d != "" {
		t.Fatalf("session starts: kicksim's truth vs STREAM_STARTED in PostgreSQL (-truth +stored):\n%s", d)
	}
	var ends []int64
	for _, r := range s.query(`SELECT seq FROM kickmon.status_events WHERE kind = 'STREAM_ENDED' ORDER BY seq`) {
		ends = append(ends, r[0].(int64))
	}
	want := map[*fakeTarget][]string{}
	for _, x := range starts {
		want[discord] = append(want[discord], fmt.Sprintf("team-discord:%d", x.seq))
		want[hook] = append(want[hook], fmt.Sprintf("hook:%d", x.seq))
		if slices.Contains(picked, x.slug) {
			want[slack] = append(want[slack], fmt.Sprintf("team-slack:%d", x.seq))
		}
	}
	for _, seq := range ends {
		want[hook] = append(want[hook], fmt.Sprintf("hook:%d", seq))
	}
	names := map[*fakeTarget]string{discord: "discord", slack: "slack", hook: "webhook"}
	for f, w := range want {
		slices.Sort(w)
		waitFor(t, 3*time.Minute, fmt.Sprintf("%s: %d deliveries", names[f], len(w)), func() bool { return len(f.keys()) >= len(w) })
	}
	waitFor(t, 2*time.Minute, "kicknotify's queue empty", func() bool {
		return s.count(`SELECT count(*) FROM kickmon_river.river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`) == 0
	})
	for f, w := range want {
		slices.Sort(w)
		if d := cmp.Diff(w, f.keys()); d != "" {
			t.Errorf("%s: deliveries after de-duplication by key (-want +got):\n%s", names[f], d)
		}
		wire, accepted, bad := f.stats()
		if len(bad) > 0 {
			t.Errorf("%s: %v", names[f], bad)
		}
		t.Logf("%s: %d requests on the wire, %d accepted, %d distinct", names[f], wire, accepted, len(f.keys()))
	}
	if n := s.count(`SELECT count(*) FROM kickmon_river.river_job WHERE state IN ('cancelled', 'discarded')`); n != 0 {
		t.Errorf("%d jobs given up", n)
	}
	// What was sent is the stored event (kicknotify reads it by seq): the
	// webhook's body names it, and Discord's embed shows the thumbnail the
	// collector stored (kicksim serves one while live; a start seen first
	// by push has none yet).
	thumbs := 0
	for _, x := range starts {
		var hookBody struct {
			Seq      string `json:"seq"`
			Streamer struct {
				Slug string `json:"slug"`
			} `json:"streamer"`
		}
		if err := json.Unmarshal(hook.body(fmt.Sprintf("hook:%d", x.seq)), &hookBody); err != nil || hookBody.Seq != fmt.Sprint(x.seq) || hookBody.Streamer.Slug != x.slug {
			t.Errorf("webhook body of seq %d: %+v, %v; want slug %s", x.seq, hookBody, err, x.slug)
		}
		var embed struct {
			Embeds []struct {
				Image *struct {
					URL string `json:"url"`
				} `json:"image"`
			} `json:"embeds"`
		}
		if err := json.Unmarshal(discord.body(fmt.Sprintf("team-discord:%d", x.seq)), &embed); err != nil || len(embed.Embeds) != 1 {
			t.Errorf("discord body of seq %d: %+v, %v", x.seq, embed, err)
			continue
		}
		got := ""
		if img := embed.Embeds[0].Image; img != nil {
			got = img.URL
			thumbs++
		}
		stored := s.query(`SELECT coalesce(state->>'thumbnail_url', '') FROM kickmon.status_events WHERE seq = $1`, x.seq)[0][0].(string)
		if got != stored {
			t.Errorf("discord embed image of seq %d = %q, stored thumbnail %q", x.seq, got, stored)
		}
	}
	t.Logf("discord: %d of %d go-live embeds with a thumbnail", thumbs, len(starts))

	// kickctl talks to the real kicknotify: status, a test message.
	notifySocket := "--notify-socket=" + filepath.Join(s.dir, "n.sock")
	out, err := s.ctl("notify", "status", notifySocket)
	if err != nil || !strings.Contains(out, "team-discord") || !strings.Contains(out, fmt.Sprintf("%d", len(starts))) {
		t.Errorf("kickctl notify status: %v\n%s", err, out)
	}
	out, err = s.ctl("status", notifySocket)
	if err != nil || !strings.Contains(out, "notifier:  3 targets, 0 events to fan out, 0 deliveries pending, 0 retrying, 0 failed") {
		t.Errorf("kickctl status: %v\n%s", err, out)
	}
	before := len(hook.keys())
	if out, err := s.ctl("notify", "test", "hook", notifySocket); err != nil || !strings.Contains(out, "test message sent to hook: 204") {
		t.Errorf("kickctl notify test hook: %v\n%s", err, out)
	}
	if got := hook.keys(); len(got) != before+1 || !strings.HasPrefix(got[len(got)-1], "hook:test-") {
		t.Errorf("the test message did not arrive signed with a test key: %v", got[before:])
	}
	if out, err := s.ctl("notify", "test", "nope", notifySocket); err == nil || !strings.Contains(out, `no target named "nope"`) {
		t.Errorf("kickctl notify test nope: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

type truthEntry struct {
	Kind      string    `json:"kind"`
	UserID    int64     `json:"user_id"`
	StartedAt time.Time `json:"started_at"`
}

func (s *system) truth() []truthEntry {
	var out []truthEntry
	if err := json.Unmarshal(s.sim("GET", "/truth", nil), &out); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// lockedBuffer is a bytes.Buffer for concurrent writers and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
