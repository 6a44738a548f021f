package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/kicksim"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"go.uber.org/goleak"
)

// binary is the kickcollector executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kcbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "kickcollector")
	build := exec.Command("go", "build", "-o", binary, "github.com/kickmon/kickmon/collector/cmd/kickcollector")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: build kickcollector: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// deadline bounds every wait for a condition.
const deadline = 15 * time.Second

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: still not true after %s: %v", what, deadline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tempDir is a short directory under /tmp (Unix socket paths are limited
// to 108 bytes, and t.TempDir paths can be long).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// simEnv is the environment a collector needs to use sim, with a socket
// and state directory of its own, a 1 s poll interval and a larger request
// budget. No streamers.
func simEnv(t *testing.T, sim *kicksim.Sim) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range sim.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	delete(env, "KICKMON_STREAMERS")
	dir := tempDir(t)
	env["KICKMON_SOCKET"] = filepath.Join(dir, "k.sock")
	env["KICKMON_STATE_DIR"] = filepath.Join(dir, "state")
	env["KICKMON_POLL_INTERVAL"] = "1s"
	// A 1 s interval and out-of-turn checks use up the default 60/min, and
	// AddStreamers then waits seconds for a slot behind the poller.
	env["KICKMON_API_BUDGET"] = "600"
	return env
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// logLine finds the first JSON log line for which match is true.
func (b *syncBuffer) logLine(match func(map[string]any) bool) (map[string]any, bool) {
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if match(m) {
			return m, true
		}
	}
	return nil, false
}

// daemon is app.Run running in-process.
type daemon struct {
	env    map[string]string
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
	conn   *kickapi.Conn
}

// startDaemon runs app.Run with env in a goroutine and stops it in
// t.Cleanup (unless the test stops it first).
func startDaemon(t *testing.T, env map[string]string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{env: env, cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	go func() { d.done <- Run(ctx, nil, lookup, &syncBuffer{}, d.stderr) }()
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("kickcollector log:\n%s", d.stderr.String())
		}
	})
	conn, err := kickapi.Dial(env["KICKMON_SOCKET"])
	if err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	t.Cleanup(func() { _ = conn.Close() })
	d.waitServing(t)
	return d
}

// stop cancels Run and returns its error; it is safe to call twice.
func (d *daemon) stop() error {
	d.cancel()
	select {
	case err, ok := <-d.done:
		if ok {
			close(d.done)
		}
		return err
	case <-time.After(deadline):
		return errors.New("Run did not return after its context was cancelled")
	}
}

// waitServing waits until the API answers GetStatus.
func (d *daemon) waitServing(t *testing.T) {
	t.Helper()
	eventually(t, "collector serving", func() error {
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("Run returned early: %v\n%s", err, d.stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := d.conn.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
		return err
	})
}

// rpcCtx is a context for one call.
func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// add watches streamers through the API, with their channel ids so that
// Pusher covers them, and fails the test on any per-slug error.
func add(t *testing.T, c *kickapi.Conn, streamers ...kicksim.Streamer) {
	t.Helper()
	for _, s := range streamers {
		res, err := c.AddStreamers(rpcCtx(t), &kickmonv1.AddStreamersRequest{Slugs: []string{s.Slug}, ChannelId: s.ChannelID})
		if err != nil {
			t.Fatalf("AddStreamers %s: %v", s.Slug, err)
		}
		for _, r := range res.GetResults() {
			if r.GetError() != "" {
				t.Fatalf("AddStreamers %s: %s", r.GetSlug(), r.GetError())
			}
		}
	}
}

// waitSubscribed waits until the collector's realtime provider (Pusher or
// Centrifugo, as negotiated) has subscribed to the streamers' channels.
func waitSubscribed(t *testing.T, sim *kicksim.Sim, streamers ...kicksim.Streamer) {
	t.Helper()
	for _, s := range streamers {
		ch := fmt.Sprintf("channel.%d", s.ChannelID)
		eventually(t, "realtime subscribed to "+ch, func() error {
			if sim.Subscriptions(ch)+sim.CentrifugoSubscriptions(ch) == 0 {
				return errors.New("no subscription")
			}
			return nil
		})
	}
}

// watcher collects one WatchEvents stream.
type watcher struct {
	cancel context.CancelFunc
	events chan *kickmonv1.Event
	done   chan error
}

// watch opens WatchEvents from seq; the stream ends in t.Cleanup.
func watch(t *testing.T, c *kickapi.Conn, from uint64) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: from})
	if err != nil {
		cancel()
		t.Fatalf("WatchEvents(%d): %v", from, err)
	}
	w := &watcher{cancel: cancel, events: make(chan *kickmonv1.Event, 10000), done: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				w.done <- err
				return
			}
			for _, e := range resp.GetEvents() {
				w.events <- e
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

// close ends the stream and waits for its goroutine; safe to call twice.
func (w *watcher) close() {
	w.cancel()
	if err, ok := <-w.done; ok {
		_ = err
		close(w.done)
	}
}

// until returns every event received up to and including the first one for
// which stop is true.
func (w *watcher) until(t *testing.T, what string, stop func(*kickmonv1.Event) bool) []*kickmonv1.Event {
	t.Helper()
	var got []*kickmonv1.Event
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case e := <-w.events:
			got = append(got, e)
			if stop(e) {
				return got
			}
		case err := <-w.done:
			w.done <- err
			t.Fatalf("waiting for %s: stream ended: %v (after %s)", what, err, describe(got))
		case <-timer.C:
			t.Fatalf("waiting for %s: not seen within %s; got %s", what, deadline, describe(got))
		}
	}
}

// throughSeq returns events until the one with seq last.
func (w *watcher) throughSeq(t *testing.T, last uint64) []*kickmonv1.Event {
	t.Helper()
	return w.until(t, fmt.Sprintf("seq %d", last), func(e *kickmonv1.Event) bool { return e.GetSeq() >= last })
}

// kindFor matches an event of kind about one streamer.
func kindFor(kind kickmonv1.EventKind, userID int64) func(*kickmonv1.Event) bool {
	return func(e *kickmonv1.Event) bool {
		return e.GetKind() == kind && e.GetStreamer().GetBroadcasterUserId() == userID
	}
}

// describe renders events compactly for failure messages.
func describe(events []*kickmonv1.Event) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d:%s/%s user=%d", e.GetSeq(), strings.TrimPrefix(e.GetKind().String(), "EVENT_KIND_"),
			strings.TrimPrefix(e.GetSource().String(), "SOURCE_"), e.GetStreamer().GetBroadcasterUserId())
		if s := e.GetSession(); s != nil {
			fmt.Fprintf(&b, " session=%s start=%s prov=%t", s.GetSessionId(), s.GetStartedAt().AsTime().Format(time.TimeOnly), s.GetStartedAtProvisional())
		}
	}
	b.WriteString("]")
	return b.String()
}

// lastSeq is the seq the watch list reflects.
func lastSeq(t *testing.T, c *kickapi.Conn) uint64 {
	t.Helper()
	resp, err := c.ListStreamers(rpcCtx(t), &kickmonv1.ListStreamersRequest{})
	if err != nil {
		t.Fatalf("ListStreamers: %v", err)
	}
	return resp.GetLastSeq()
}

// watchedSlugs lists the watched slugs, sorted.
func watchedSlugs(ctx context.Context, c *kickapi.Conn) ([]string, error) {
	resp, err := c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
	if err != nil {
		return nil, err
	}
	var slugs []string
	for _, s := range resp.GetStreamers() {
		slugs = append(slugs, s.GetSlug())
	}
	slices.Sort(slugs)
	return slugs, nil
}

// slugsOf lists the streamers' slugs, sorted.
func slugsOf(streamers ...kicksim.Streamer) []string {
	var slugs []string
	for _, s := range streamers {
		slugs = append(slugs, s.Slug)
	}
	slices.Sort(slugs)
	return slugs
}

// checkContiguous fails unless events have exactly the seqs from..to, once
// each, in order.
func checkContiguous(t *testing.T, events []*kickmonv1.Event, from, to uint64) {
	t.Helper()
	want := from
	for _, e := range events {
		if e.GetSeq() != want {
			t.Fatalf("seq %d where %d was expected (want every seq %d..%d once, in order): %s", e.GetSeq(), want, from, to, describe(events))
		}
		want++
	}
	if want != to+1 {
		t.Fatalf("events end at seq %d, want %d: %s", want-1, to, describe(events))
	}
}

// afterPollRounds waits for two more poll rounds, then returns events with
// everything committed since appended.
func afterPollRounds(t *testing.T, sim *kicksim.Sim, c *kickapi.Conn, w *watcher, events []*kickmonv1.Event) []*kickmonv1.Event {
	t.Helper()
	for range 2 {
		n := sim.Requests(kicksim.EndpointChannels)
		eventually(t, "another poll round", func() error {
			if sim.Requests(kicksim.EndpointChannels) <= n {
				return errors.New("no request yet")
			}
			return nil
		})
	}
	if last := lastSeq(t, c); last > events[len(events)-1].GetSeq() {
		events = append(events, w.throughSeq(t, last)...)
	}
	return events
}
