package kicksim

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pusherJSVersion is the pusher-js version pinned in pusherjs/package.json.
const pusherJSVersion = "8.4.0"

// TestPusherJSConformance runs the real pusher-js client against kicksim. It
// needs node (Node.js 20) and `npm ci` in collector/kicksim/pusherjs; it
// fails, never skips, when they are missing.
func TestPusherJSConformance(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found in PATH: install Node.js 20 (e.g. apt-get install nodejs npm), then run `npm ci` in collector/kicksim/pusherjs")
	}
	dir, err := filepath.Abs("pusherjs")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "pusher-js", "package.json"))
	if err != nil {
		t.Fatalf("pusher-js is not installed (%v): run `npm ci` in collector/kicksim/pusherjs", err)
	}
	mustUnmarshal(t, b, &pkg)
	if pkg.Version != pusherJSVersion {
		t.Fatalf("pusher-js %s installed, want %s: run `npm ci` in collector/kicksim/pusherjs", pkg.Version, pusherJSVersion)
	}

	sim := startSim(t, WithStreamers(3), WithActivityTimeout(200*time.Millisecond), WithPongTimeout(time.Second))
	st := sim.Streamers()[1]
	ch := channelName(st)
	host, port, _ := strings.Cut(strings.TrimPrefix(sim.APIURL(), "http://"), ":")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "conformance.js"), DefaultAppKey, host, port, ch)
	cmd.Dir = dir
	cmd.Stderr = tlogWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				t.Logf("pusher-js: %s", sc.Bytes())
				lines <- m
			}
		}
	}()
	defer func() {
		_ = stdin.Close()
		for range lines { // drain until node exits
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("node: %v", err)
		}
	}()
	var states []string
	expectError := false
	await := func(typ string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("node exited before %s", typ)
				}
				if m["type"] == "state" {
					states = append(states, m["current"].(string))
				}
				if (m["type"] == "error" || m["type"] == "subscription_error") && !expectError {
					t.Errorf("pusher-js reported %v", m)
				}
				if m["type"] == typ && (match == nil || match(m)) {
					return m
				}
			case <-timer.C:
				t.Fatalf("timed out waiting for pusher-js %s", typ)
			}
		}
	}
	if v := await("version", nil); v["version"] != pusherJSVersion {
		t.Errorf("pusher-js reports version %v", v["version"])
	}
	await("connected", nil)
	await("subscribed", nil)

	if err := sim.GoLive(st.UserID); err != nil {
		t.Fatal(err)
	}
	live, _ := sim.Streamer(st.UserID)
	ev := await("event", func(m map[string]any) bool { return m["event"] == EventStreamerIsLive })
	want := map[string]any{"livestream": map[string]any{
		"id": float64(live.LivestreamID), "channel_id": float64(live.ChannelID), "session_title": live.Title,
		"source": nil, "created_at": live.PusherCreatedAt.Format("2006-01-02T15:04:05.000000Z"),
	}}
	if diff := cmp.Diff(want, ev["data"]); diff != "" {
		t.Errorf("StreamerIsLive as pusher-js decoded it -want +got:\n%s", diff)
	}

	// Survive server pings: pusher-js must answer each pusher:ping, or the
	// server closes it with 4201 and it reconnects with a new socket id.
	pings := sim.PingsSent()
	eventually(t, 5*time.Second, "3 server pings", func() bool { return sim.PingsSent() >= pings+3 })
	if err := sim.GoOffline(st.UserID); err != nil {
		t.Fatal(err)
	}
	await("event", func(m map[string]any) bool { return m["event"] == EventStopStreamBroadcast })
	if diff := cmp.Diff([]string{"connected"}, states); diff != "" {
		t.Errorf("connection states -want +got (a reconnect means a ping went unanswered):\n%s", diff)
	}
	if n := sim.Sockets(); n != 1 {
		t.Errorf("%d sockets, want 1", n)
	}
	if got := sim.Subscriptions(ch); got != 1 {
		t.Errorf("subscriptions %d", got)
	}

	// Pusher retired: the 4001 close is a refusal for pusher-js; it reports
	// the error and stays disconnected instead of reconnecting.
	expectError = true
	sim.RetirePusher()
	await("error", func(m map[string]any) bool { s, _ := m["error"].(string); return strings.Contains(s, "4001") })
	await("state", func(m map[string]any) bool { return m["current"] == "disconnected" })
	if n := sim.Sockets(); n != 0 {
		t.Errorf("%d sockets after retirement, want 0", n)
	}
}
