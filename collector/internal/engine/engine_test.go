package engine

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/collector/internal/monitor"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/spool"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"go.uber.org/goleak"
)

// waitTimeout bounds every wait for a condition.
const waitTimeout = 10 * time.Second

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder stands in for the sources: it records what the engine asks of them.
type recorder struct {
	mu      sync.Mutex
	watched map[int64]int64 // user → channel
	checked []int64
	subs    map[int64]int64 // channel → user
}

func newRecorder() *recorder {
	return &recorder{watched: map[int64]int64{}, subs: map[int64]int64{}}
}
func (r *recorder) Watch(u, c int64) { r.mu.Lock(); r.watched[u] = c; r.mu.Unlock() }
func (r *recorder) Unwatch(u int64)  { r.mu.Lock(); delete(r.watched, u); r.mu.Unlock() }
func (r *recorder) CheckNow(ids ...int64) {
	r.mu.Lock()
	r.checked = append(r.checked, ids...)
	r.mu.Unlock()
}
func (r *recorder) Subscribe(c, u int64) { r.mu.Lock(); r.subs[c] = u; r.mu.Unlock() }
func (r *recorder) Unsubscribe(c int64)  { r.mu.Lock(); delete(r.subs, c); r.mu.Unlock() }

type harness struct {
	e      *Engine
	sp     *spool.Spool
	path   string
	rec    *recorder
	cancel func() // ends Run
	stop   func() // ends Run, waits for it, closes the spool
}

var world = map[string]poller.Resolution{
	"alice": {Slug: "alice", UserID: 1},
	"bob": {Slug: "bob", UserID: 2, Current: &observation.Observation{
		Source: kickmonv1.Source_SOURCE_POLL, UserID: 2, Slug: "bob", Live: observation.Live,
		StartedAt: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC), ObservedAt: time.Now(),
	}},
}

func start(t *testing.T, path string) *harness {
	t.Helper()
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{sp: sp, path: path, rec: newRecorder()}
	h.e = New(Options{
		Monitor: monitor.New(monitor.Config{OfflineGrace: 50 * time.Millisecond}),
		Spool:   sp, Poller: h.rec, Pusher: h.rec,
		Resolve: func(ctx context.Context, slugs []string) []poller.Resolution {
			var out []poller.Resolution
			for _, s := range slugs {
				r, ok := world[strings.ToLower(s)]
				if !ok {
					r = poller.Resolution{Err: errors.New("unknown slug " + s)}
				}
				r.Slug = s
				out = append(out, r)
			}
			return out
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.e.Run(ctx) }()
	h.cancel = cancel
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = sp.Close()
	}
	testwait.For(t, waitTimeout, "engine running", func() bool { return h.e.Healthy(time.Minute) == nil })
	return h
}

func kinds(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	evs, err := sp.Read(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.GetKind().String()+":"+e.GetStreamer().GetSlug())
	}
	return out
}

func TestAddObserveRemove(t *testing.T) {
	ctx := context.Background()
	h := start(t, filepath.Join(t.TempDir(), "spool.db"))
	defer h.stop()

	res, err := h.e.Add(ctx, []string{"Alice", "bob", "nobody", "alice"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var outcome []string
	for _, r := range res {
		switch {
		case r.GetError() != "":
			outcome = append(outcome, r.GetSlug()+":error")
		case r.GetUnchanged():
			outcome = append(outcome, r.GetSlug()+":unchanged")
		default:
			outcome = append(outcome, r.GetSlug()+":added")
		}
	}
	if diff := cmp.Diff([]string{"Alice:added", "bob:added", "nobody:error", "alice:unchanged"}, outcome); diff != "" {
		t.Errorf("add outcomes (-want +got):\n%s", diff)
	}

	// A push go-live for alice, with the channel id learned from it.
	h.e.Observations() <- observation.Observation{Source: kickmonv1.Source_SOURCE_POLL, UserID: 1, ChannelID: 668, Live: observation.Live,
		StartedAt: time.Now().Add(-time.Second), ObservedAt: time.Now()}
	testwait.For(t, waitTimeout, "alice live", func() bool {
		st, err := h.e.Get(ctx, "alice", 0)
		return err == nil && st.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE
	})
	h.rec.mu.Lock()
	if h.rec.subs[668] != 1 || h.rec.watched[1] != 668 {
		t.Errorf("channel 668 not subscribed for alice: subs=%v watched=%v", h.rec.subs, h.rec.watched)
	}
	h.rec.mu.Unlock()

	if _, err := h.e.Refresh(ctx, []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	h.rec.mu.Lock()
	if !slices.Contains(h.rec.checked, 2) {
		t.Errorf("refresh of bob did not reach the poller: %v", h.rec.checked)
	}
	h.rec.mu.Unlock()

	rm, err := h.e.Remove(ctx, []string{"bob", "ghost"})
	if err != nil || rm[0].GetError() != "" || rm[1].GetError() == "" || !rm[0].GetStreamer().GetRemoved() {
		t.Fatalf("remove = %v, %v", rm, err)
	}
	listed, err := h.e.List(ctx, &kickmonv1.ListStreamersRequest{})
	if list := listed.GetStreamers(); err != nil || len(list) != 1 || list[0].GetSlug() != "alice" {
		t.Fatalf("list = %v, %v", list, err)
	}
	if last := listed.GetLastSeq(); last != h.sp.LastSeq() {
		t.Errorf("list last_seq %d, spool %d", last, h.sp.LastSeq())
	}
	withRemoved, _ := h.e.List(ctx, &kickmonv1.ListStreamersRequest{IncludeRemoved: true})
	if n := len(withRemoved.GetStreamers()); n != 2 {
		t.Errorf("list with removed has %d streamers, want 2", n)
	}
	got := kinds(t, h.sp)
	for _, want := range []string{"EVENT_KIND_STREAMER_ADDED:alice", "EVENT_KIND_STREAMER_ADDED:bob", "EVENT_KIND_STREAM_STARTED:bob", "EVENT_KIND_STREAM_STARTED:alice", "EVENT_KIND_STREAMER_REMOVED:bob"} {
		if !slices.Contains(got, want) {
			t.Errorf("spool lacks %s; has %v", want, got)
		}
	}
	if _, err := h.e.Add(ctx, []string{"alice", "bob"}, 5); err == nil {
		t.Error("channel id with two slugs accepted")
	}
}

// After a restart the watch list and the open session come back from the
// spool, and the sources are told to watch again.
func TestRestartRestores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spool.db")
	h := start(t, path)
	if _, err := h.e.Add(ctx, []string{"bob"}, 0); err != nil {
		t.Fatal(err)
	}
	before := h.sp.LastSeq()
	h.stop()

	h = start(t, path)
	defer h.stop()
	st, err := h.e.Get(ctx, "bob", 0)
	if err != nil || st.GetState() != kickmonv1.LiveState_LIVE_STATE_LIVE {
		t.Fatalf("bob after restart = %v, %v", st, err)
	}
	h.rec.mu.Lock()
	_, watched := h.rec.watched[2]
	checked := slices.Contains(h.rec.checked, 2)
	h.rec.mu.Unlock()
	if !watched || !checked {
		t.Errorf("after restart bob watched=%v checked=%v", watched, checked)
	}
	// The same session reported again: nothing new.
	h.e.Observations() <- *world["bob"].Current
	h.e.Observations() <- observation.Observation{Source: kickmonv1.Source_SOURCE_POLL, UserID: 2, Live: observation.Offline, ObservedAt: time.Now()}
	testwait.For(t, waitTimeout, "bob offline", func() bool {
		st, _ := h.e.Get(ctx, "bob", 0)
		return st.GetState() == kickmonv1.LiveState_LIVE_STATE_OFFLINE
	})
	evs, _ := h.sp.Read(before+1, 100)
	var got []kickmonv1.EventKind
	for _, e := range evs {
		got = append(got, e.GetKind())
	}
	if diff := cmp.Diff([]kickmonv1.EventKind{kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED}, got); diff != "" {
		t.Errorf("events after restart (-want +got):\n%s", diff)
	}
}

// A list with changed_since gives only the streamers that changed after
// the list whose token it names; a token of another run, or none, gets
// every one. confirmations_only copies confirmation times alone.
func TestListChangedSince(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spool.db")
	h := start(t, path)
	if _, err := h.e.Add(ctx, []string{"alice", "bob"}, 0); err != nil {
		t.Fatal(err)
	}
	list := func(t *testing.T, req *kickmonv1.ListStreamersRequest) ([]int64, *kickmonv1.ListStreamersResponse) {
		t.Helper()
		res, err := h.e.List(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, st := range res.GetStreamers() {
			ids = append(ids, st.GetBroadcasterUserId())
		}
		return ids, res
	}
	all, first := list(t, &kickmonv1.ListStreamersRequest{ConfirmationsOnly: true})
	if !slices.Equal(all, []int64{1, 2}) || first.GetChangesOnly() || first.GetChangesToken() == "" {
		t.Fatalf("first list: users %v, changes_only %v, token %q; want [1 2], false, a token", all, first.GetChangesOnly(), first.GetChangesToken())
	}
	if bob := first.GetStreamers()[1]; bob.GetSlug() != "" || bob.GetSession() != nil || bob.GetLastConfirmedAt() == nil || len(bob.GetCoverage()) == 0 {
		t.Errorf("confirmations only gave %v", bob)
	}
	unchanged, res := list(t, &kickmonv1.ListStreamersRequest{ConfirmationsOnly: true, ChangedSince: first.GetChangesToken()})
	if len(unchanged) != 0 || !res.GetChangesOnly() {
		t.Errorf("nothing changed: users %v, changes_only %v; want none, true", unchanged, res.GetChangesOnly())
	}

	h.e.Observations() <- observation.Observation{Source: kickmonv1.Source_SOURCE_POLL, UserID: 2, Live: observation.Offline, ObservedAt: time.Now()}
	testwait.For(t, waitTimeout, "bob offline", func() bool {
		st, _ := h.e.Get(ctx, "bob", 0)
		return st.GetState() == kickmonv1.LiveState_LIVE_STATE_OFFLINE
	})
	changed, res := list(t, &kickmonv1.ListStreamersRequest{ChangedSince: first.GetChangesToken()})
	if !slices.Equal(changed, []int64{2}) || !res.GetChangesOnly() || res.GetStreamers()[0].GetSlug() != "bob" {
		t.Errorf("bob confirmed offline: list %v, changes_only %v; want bob's full state only", res.GetStreamers(), res.GetChangesOnly())
	}
	again, _ := list(t, &kickmonv1.ListStreamersRequest{ChangedSince: res.GetChangesToken()})
	if len(again) != 0 {
		t.Errorf("after the list that gave bob's change: users %v, want none", again)
	}
	for _, token := range []string{"", "another-run.1", first.GetChangesToken() + "x", "nonsense"} {
		if ids, res := list(t, &kickmonv1.ListStreamersRequest{ChangedSince: token}); !slices.Equal(ids, []int64{1, 2}) || res.GetChangesOnly() {
			t.Errorf("token %q: users %v, changes_only %v; want every one", token, ids, res.GetChangesOnly())
		}
	}

	// A restarted collector counts changes anew: an earlier run's token
	// gets the whole list.
	h.stop()
	h = start(t, path)
	defer h.stop()
	if ids, res := list(t, &kickmonv1.ListStreamersRequest{ChangedSince: first.GetChangesToken()}); !slices.Equal(ids, []int64{1, 2}) || res.GetChangesOnly() {
		t.Errorf("after a restart: users %v, changes_only %v; want every one", ids, res.GetChangesOnly())
	}
}

func TestCallsFailWhenStopped(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "spool.db"))
	h.stop()
	if _, err := h.e.List(context.Background(), &kickmonv1.ListStreamersRequest{}); err == nil {
		t.Error("List succeeded on a stopped engine")
	}
	if err := h.e.Healthy(time.Minute); err == nil {
		t.Error("stopped engine reported healthy")
	}
}

// A spool that cannot commit an operator's change stops the loop, as it
// does for observations: the monitor must not go on with a change nobody
// can see.
func TestCallCommitFailureStopsLoop(t *testing.T) {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	e := New(Options{
		Monitor: monitor.New(monitor.Config{OfflineGrace: time.Minute}),
		Spool:   sp, Poller: rec,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	testwait.For(t, waitTimeout, "engine running", func() bool { return e.Healthy(time.Minute) == nil })

	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddResolved(ctx, []poller.Resolution{{Slug: "alice", UserID: 1}}, 0); !errors.Is(err, spool.ErrClosed) {
		t.Errorf("AddResolved with a closed spool: err = %v, want %v", err, spool.ErrClosed)
	}
	select {
	case err := <-done:
		if !errors.Is(err, spool.ErrClosed) {
			t.Errorf("Run = %v, want an error wrapping %v", err, spool.ErrClosed)
		}
	case <-time.After(waitTimeout):
		cancel()
		<-done
		t.Fatal("Run went on after a failed commit")
	}
	if _, err := e.List(ctx, &kickmonv1.ListStreamersRequest{}); err == nil {
		t.Error("List succeeded after the loop stopped")
	}
}

// Observations the sources queued before shutdown are committed, not dropped.
func TestShutdownCommitsQueuedObservations(t *testing.T) {
	ctx := context.Background()
	h := start(t, filepath.Join(t.TempDir(), "spool.db"))
	if _, err := h.e.Add(ctx, []string{"alice"}, 0); err != nil {
		t.Fatal(err)
	}
	h.e.o.BatchMax = 1 // one observation per loop turn: shutdown races each
	before := h.sp.LastSeq()
	release := make(chan struct{})
	blocked := make(chan struct{})
	go func() {
		_ = h.e.do(ctx, func() error { close(blocked); <-release; return nil })
	}()
	<-blocked
	const n = 50
	for i := range n {
		h.e.Observations() <- observation.Observation{Source: kickmonv1.Source_SOURCE_PUSHER, UserID: 1, Live: observation.Live,
			HasViewers: true, Viewers: int64(100 + i), StartedAt: time.Now().Add(-time.Minute), ObservedAt: time.Now().Add(time.Duration(i) * time.Millisecond)}
	}
	h.cancel()
	close(release)
	h.stop()
	sp, err := spool.Open(h.path, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sp.Close() }()
	evs, err := sp.Read(before+1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// One STREAM_STARTED, then a STREAM_UPDATED per viewer count.
	if len(evs) != n {
		t.Fatalf("%d events committed after shutdown began, want %d", len(evs), n)
	}
	if got := evs[len(evs)-1].GetStreamer().GetViewerCount(); got != 100+n-1 {
		t.Errorf("last viewer count %d, want %d", got, 100+n-1)
	}
}

// TestHostileTextDoesNotStopTheEngine reproduces issue 11's crash loop: a
// title with invalid UTF-8 (and a NUL, and an oversized category) from any
// source must become a stored, sanitized event, not a fatal spool error.
func TestHostileTextDoesNotStopTheEngine(t *testing.T) {
	ctx := context.Background()
	h := start(t, filepath.Join(t.TempDir(), "spool.db"))
	defer h.stop()
	if _, err := h.e.Add(ctx, []string{"alice"}, 0); err != nil {
		t.Fatal(err)
	}
	h.e.Observations() <- observation.Observation{Source: kickmonv1.Source_SOURCE_PUSHER, UserID: 1, Live: observation.Live,
		StartedAt: time.Now().Add(-time.Second), ObservedAt: time.Now(),
		HasTitle: true, Title: "bad \xff\xfe title\x00",
		HasCategory: true, CategoryID: 3, CategoryName: strings.Repeat("c", 10*observation.MaxCategoryBytes)}
	testwait.For(t, waitTimeout, "alice live", func() bool {
		st, err := h.e.Get(ctx, "alice", 0)
		return err == nil && st.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE
	})
	st, _ := h.e.Get(ctx, "alice", 0)
	if st.GetTitle() != "bad \uFFFD title" || len(st.GetCategoryName()) != observation.MaxCategoryBytes {
		t.Errorf("stored title %q, category of %d bytes; want sanitized and capped", st.GetTitle(), len(st.GetCategoryName()))
	}
	if err := h.e.Healthy(time.Minute); err != nil {
		t.Errorf("engine after hostile text: %v", err)
	}
}

// TestQuarantine: an event the spool cannot encode is dropped, logged and
// counted; the others of its batch are committed and the engine goes on.
func TestQuarantine(t *testing.T) {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var quarantined []string
	e := New(Options{Monitor: monitor.New(monitor.Config{}), Spool: sp, Poller: newRecorder(),
		Quarantined: func(ev *kickmonv1.Event) { quarantined = append(quarantined, ev.GetStreamer().GetSlug()) }})
	ev := func(slug, title string) *kickmonv1.Event {
		return &kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED,
			Streamer: &kickmonv1.Streamer{BroadcasterUserId: 1, Slug: slug, Title: title}}
	}
	err = e.apply(monitor.Result{Events: []*kickmonv1.Event{ev("good", "ok"), ev("bad", "\xff"), ev("after", "ok")}})
	if err != nil {
		t.Fatalf("apply with an unencodable event: %v", err)
	}
	if diff := cmp.Diff([]string{"EVENT_KIND_STREAM_UPDATED:good", "EVENT_KIND_STREAM_UPDATED:after"}, kinds(t, sp)); diff != "" {
		t.Errorf("spool (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bad"}, quarantined); diff != "" {
		t.Errorf("quarantined (-want +got):\n%s", diff)
	}
}

// TestHealthyIgnoresWallClockSteps: liveness is measured on the monotonic
// clock. The engine's clock (for event times) steps back an hour while the
// loop is blocked: the stall must still show; and a step forward while the
// loop turns must not fake one.
func TestHealthyIgnoresWallClockSteps(t *testing.T) {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var step atomic.Int64
	e := New(Options{Monitor: monitor.New(monitor.Config{}), Spool: sp, Poller: newRecorder(),
		Now: func() time.Time { return time.Now().Round(0).Add(time.Duration(step.Load())) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testwait.For(t, waitTimeout, "engine running", func() bool { return e.Healthy(time.Minute) == nil })

	step.Store(int64(time.Hour))
	if err := e.Healthy(time.Minute); err != nil {
		t.Errorf("after the wall clock stepped forward an hour: %v", err)
	}

	step.Store(-int64(time.Hour))
	release := make(chan struct{})
	blocked := make(chan error, 1)
	go func() { blocked <- e.do(ctx, func() error { <-release; return nil }) }()
	defer func() { // before Run's defer: the loop must be free to stop
		close(release)
		if err := <-blocked; err != nil {
			t.Error(err)
		}
	}()
	testwait.For(t, waitTimeout, "the blocked loop reported stalled", func() bool { return e.Healthy(50*time.Millisecond) != nil })
}
