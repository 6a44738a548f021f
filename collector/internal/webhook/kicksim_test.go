package webhook

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	"github.com/kickmon/kickmon/collector/kicksim"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// waitTimeout bounds every wait for a condition.
const waitTimeout = 10 * time.Second

// restClient is the real REST client against the sim.
func restClient(t *testing.T, sim *kicksim.Sim) *kickrest.Client {
	t.Helper()
	c, err := kickrest.New(kickrest.Config{ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), AuthURL: sim.AuthURL(), APIURL: sim.APIURL(),
		AllowInsecure: true, Budget: -1, Logger: logtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func countSubs(sim *kicksim.Sim) map[int64]int {
	out := make(map[int64]int)
	for _, s := range sim.WebhookSubscriptions() {
		out[s.BroadcasterUserID]++
	}
	return out
}

func TestKicksimDeliveries(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3), kicksim.WithWebhookDuplicates(1), kicksim.WithLogger(logtest.New(t)))
	api := restClient(t, sim)
	r := startReceiver(t, Options{Keys: api})
	sim.SetWebhookURL(r.url)
	streamers := sim.Streamers()
	st := streamers[0]
	rep := &Repairer{API: api, Watched: func() []int64 { return []int64{st.UserID} }, Logger: logtest.New(t)}
	if n, err := rep.RepairOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("RepairOnce = %d, %v; want 2 subscriptions created", n, err)
	}
	next := func() observation.Observation {
		t.Helper()
		select {
		case o := <-r.out:
			return o
		case <-time.After(10 * time.Second):
			t.Fatalf("no observation; stats %+v, sim %+v", r.h.Stats(), sim.WebhookStats())
		}
		return observation.Observation{}
	}
	base := observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_WEBHOOK, UserID: st.UserID, Slug: st.Slug}
	tests := []struct {
		name string
		act  func() error
		want func(now kicksim.Streamer) observation.Observation
	}{
		{"live", func() error { return sim.GoLive(st.UserID) }, func(now kicksim.Streamer) observation.Observation {
			o := base
			o.Live, o.StartedAt, o.KickTime, o.HasTitle, o.Title = observation.Live, now.StartedAt, now.StartedAt, true, now.Title
			return o
		}},
		{"title", func() error { return sim.SetTitle(st.UserID, "webhook title") }, func(now kicksim.Streamer) observation.Observation {
			o := base
			o.HasTitle, o.Title, o.HasCategory, o.CategoryID, o.CategoryName = true, "webhook title", true, now.CategoryID, now.CategoryName
			return o
		}},
		{"offline", func() error { return sim.GoOffline(st.UserID) }, func(kicksim.Streamer) observation.Observation {
			var ended time.Time
			truth := sim.Truth()
			for _, tr := range truth {
				if tr.UserID == st.UserID && tr.Kind == "offline" {
					ended = tr.EndedAt
				}
			}
			o := base
			o.Live, o.EndedAt, o.KickTime, o.HasTitle, o.Title = observation.Offline, ended, ended, true, "webhook title"
			o.StartedAt = truth[len(truth)-1].StartedAt
			return o
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.act(); err != nil {
				t.Fatal(err)
			}
			now, _ := sim.Streamer(st.UserID)
			got := next()
			w := tt.want(now)
			if w.KickTime.IsZero() { // metadata: Kick's time is the delivery's timestamp
				if d := time.Since(got.KickTime); d < 0 || d > time.Minute {
					t.Errorf("KickTime %v; want the delivery time", got.KickTime)
				}
				w.KickTime = got.KickTime
			}
			// Compare instants: the sim renders times in the streamer's zone.
			if diff := cmp.Diff(w, got, ignoreObserved, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
		})
	}
	// Every message was delivered twice (WithWebhookDuplicates(1)); each
	// counted once.
	testwait.For(t, waitTimeout, "duplicates answered", func() bool { return r.h.Stats().Duplicates == 3 })
	if got := r.emitted(); len(got) != 0 {
		t.Errorf("duplicates emitted %+v", got)
	}
	if s := r.h.Stats(); s.Accepted != 3 || s.BadSig != 0 {
		t.Errorf("stats %+v; want 3 accepted, no bad signature", s)
	}
}

func TestRepairRecreatesDroppedSubscriptions(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(4))
	api := restClient(t, sim)
	var watched []int64
	for _, st := range sim.Streamers()[:3] {
		watched = append(watched, st.UserID)
	}
	want := map[int64]int{watched[0]: 2, watched[1]: 2, watched[2]: 2}
	rep := &Repairer{API: api, Watched: func() []int64 { return watched }, Interval: 20 * time.Millisecond, Logger: logtest.New(t)}

	// One subscription exists already: only the missing five are created.
	if _, err := api.CreateSubscription(context.Background(), watched[1], []kickrest.EventSpec{kickrest.EventLivestreamStatus}); err != nil {
		t.Fatal(err)
	}
	if n, err := rep.RepairOnce(context.Background()); err != nil || n != 5 {
		t.Fatalf("RepairOnce = %d, %v; want 5", n, err)
	}
	if diff := cmp.Diff(want, countSubs(sim)); diff != "" {
		t.Fatalf("subscriptions per user (-want +got):\n%s", diff)
	}
	if n, err := rep.RepairOnce(context.Background()); err != nil || n != 0 {
		t.Errorf("second RepairOnce = %d, %v; want 0 (nothing missing)", n, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	sim.DropWebhookSubscriptions()
	testwait.For(t, waitTimeout, "subscriptions re-created", func() bool { return cmp.Equal(want, countSubs(sim)) })
}

// A wake repairs at once: streamers added between intervals are subscribed
// without waiting for the next one.
func TestRepairOnWake(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	api := restClient(t, sim)
	var mu sync.Mutex
	first, added := sim.Streamers()[0].UserID, sim.Streamers()[1].UserID
	watched := []int64{first}
	wake := make(chan struct{}, 1)
	rep := &Repairer{API: api, Interval: time.Hour, Wake: wake, Logger: logtest.New(t), Watched: func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(watched)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testwait.For(t, waitTimeout, "the first repair", func() bool { return countSubs(sim)[first] == 2 })
	mu.Lock()
	watched = append(watched, added)
	mu.Unlock()
	wake <- struct{}{} // the next tick is an hour away
	testwait.For(t, waitTimeout, "the added streamer subscribed", func() bool { return countSubs(sim)[added] == 2 })
}

// capped is Kick's subscription API with a limit on subscriptions: beyond
// it, creations answer Kick's "event subscription limit reached".
type capped struct {
	SubscriptionAPI
	limit int
	calls atomic.Int64
}

func (c *capped) CreateSubscription(ctx context.Context, userID int64, events []kickrest.EventSpec) ([]kickrest.SubscriptionResult, error) {
	c.calls.Add(1)
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		return nil, err
	}
	if len(subs)+len(events) > c.limit {
		out := make([]kickrest.SubscriptionResult, len(events))
		for i, ev := range events {
			out[i] = kickrest.SubscriptionResult{Name: ev.Name, Version: ev.Version, Error: "Event subscription limit reached"}
		}
		return out, nil
	}
	return c.SubscriptionAPI.CreateSubscription(ctx, userID, events)
}

// TestRepairStatus: the Repairer reports subscriptions Kick dropped
// (auto-unsubscription) and stops asking once Kick's subscription limit is
// reached, until the watch list shrinks.
func TestRepairStatus(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(4))
	api := &capped{SubscriptionAPI: restClient(t, sim), limit: 4}
	var watched []int64
	for _, st := range sim.Streamers()[:2] {
		watched = append(watched, st.UserID)
	}
	rep := &Repairer{API: api, Watched: func() []int64 { return watched }, Logger: logtest.New(t)}
	ctx := context.Background()
	if _, err := rep.RepairOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := rep.Status(); st.Subscribed != 2 || st.Unsubscribed != 0 || st.Dropped != 0 || st.CapReached || st.LastError != "" {
		t.Errorf("status %+v; want 2 subscribed, nothing else", st)
	}

	sim.DropWebhookSubscriptions()
	if n, err := rep.RepairOnce(ctx); err != nil || n != 4 {
		t.Fatalf("RepairOnce = %d, %v; want 4 re-created", n, err)
	}
	if st := rep.Status(); st.Dropped != 4 || st.Subscribed != 2 {
		t.Errorf("status %+v; want 4 dropped, 2 subscribed again", st)
	}

	watched = append(watched, sim.Streamers()[2].UserID, sim.Streamers()[3].UserID)
	if _, err := rep.RepairOnce(ctx); err == nil || !strings.Contains(err.Error(), "limit reached") {
		t.Fatalf("RepairOnce = %v; want the limit error", err)
	}
	st := rep.Status()
	if !st.CapReached || st.Subscribed != 2 || st.Unsubscribed != 2 || !strings.Contains(st.LastError, "limit reached") {
		t.Errorf("status %+v; want the cap reached, 2 unsubscribed", st)
	}
	calls := api.calls.Load()
	if _, err := rep.RepairOnce(ctx); err != nil {
		t.Fatalf("RepairOnce under the cap = %v; want nil (nothing asked)", err)
	}
	if api.calls.Load() != calls {
		t.Error("the Repairer asked Kick again although the limit is reached")
	}
	if st := rep.Status(); !st.CapReached || !strings.Contains(st.LastError, CapMessage) {
		t.Errorf("status %+v; want the cap still reported", st)
	}

	watched = watched[:3] // a streamer removed: ask again
	api.limit = 6
	if _, err := rep.RepairOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := rep.Status(); st.CapReached || st.Subscribed != 3 || st.Unsubscribed != 0 {
		t.Errorf("status %+v; want 3 subscribed after the list shrank", st)
	}
}

// TestRepairCapsCallsPerRound: a long watch list is subscribed over several
// rounds, at most MaxPerRound calls each (they share the poller's budget).
func TestRepairCapsCallsPerRound(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(25))
	api := restClient(t, sim)
	var watched []int64
	for _, st := range sim.Streamers() {
		watched = append(watched, st.UserID)
	}
	rep := &Repairer{API: api, Watched: func() []int64 { return watched }, MaxPerRound: 10, Logger: logtest.New(t)}
	var perRound []int
	for range 4 {
		before := sim.Requests(kicksim.EndpointSubscriptions)
		n, err := rep.RepairOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		perRound = append(perRound, n)
		if calls := sim.Requests(kicksim.EndpointSubscriptions) - before - 1; calls > 10 { // one list, then creates
			t.Errorf("%d subscription calls in one round, want at most 10", calls)
		}
	}
	if diff := cmp.Diff([]int{20, 20, 10, 0}, perRound); diff != "" {
		t.Errorf("event subscriptions created per round (-want +got):\n%s", diff)
	}
}

// TestRepairBacksOffPerStreamer: a streamer whose subscription failed is
// not asked for again at once (every wake or add used to retry it); the
// others are.
func TestRepairBacksOffPerStreamer(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	api := restClient(t, sim)
	a, b := sim.Streamers()[0].UserID, sim.Streamers()[1].UserID
	watched := []int64{a}
	rep := &Repairer{API: api, Watched: func() []int64 { return watched }, Logger: logtest.New(t)}
	if _, err := rep.RepairOnce(context.Background()); err != nil { // list, create a
		t.Fatal(err)
	}
	sim.DropWebhookSubscriptions()
	// The list answers, the create of a fails.
	before := sim.Requests(kicksim.EndpointSubscriptions)
	failCreate(t, sim, rep)
	if got := sim.Requests(kicksim.EndpointSubscriptions) - before; got != 2 {
		t.Fatalf("%d subscription requests in the failing round, want list + create", got)
	}
	watched = append(watched, b)
	before = sim.Requests(kicksim.EndpointSubscriptions)
	n, err := rep.RepairOnce(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("RepairOnce = %d, %v; want b's 2 subscriptions", n, err)
	}
	if got := sim.Requests(kicksim.EndpointSubscriptions) - before; got != 2 {
		t.Errorf("%d subscription requests, want list + create b (a is backing off)", got)
	}
	if got := countSubs(sim); got[a] != 0 || got[b] != 2 {
		t.Errorf("subscriptions %v: a backs off, b is subscribed", got)
	}
}

// failCreate runs one repair whose create call is answered 503.
func failCreate(t *testing.T, sim *kicksim.Sim, rep *Repairer) {
	t.Helper()
	rep.API = &failSecond{SubscriptionAPI: rep.API, sim: sim}
	defer func() { rep.API = rep.API.(*failSecond).SubscriptionAPI }()
	if n, err := rep.RepairOnce(context.Background()); err == nil || n != 0 {
		t.Fatalf("RepairOnce = %d, %v; want the create to fail", n, err)
	}
}

// failSecond arms a 503 on kicksim just before the create call (kicksim
// counts faults per endpoint, and the list goes first).
type failSecond struct {
	SubscriptionAPI
	sim *kicksim.Sim
}

func (f *failSecond) CreateSubscription(ctx context.Context, userID int64, events []kickrest.EventSpec) ([]kickrest.SubscriptionResult, error) {
	f.sim.FailNext(kicksim.EndpointSubscriptions, 1, kicksim.Fault503)
	return f.SubscriptionAPI.CreateSubscription(ctx, userID, events)
}
