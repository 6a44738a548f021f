package pusher

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	"github.com/kickmon/kickmon/collector/kicksim"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// waitTimeout bounds every wait for a condition.
const waitTimeout = 10 * time.Second

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checker records CheckNow calls.
type checker struct {
	mu    sync.Mutex
	calls [][]int64
}

func (c *checker) CheckNow(ids ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, slices.Sorted(slices.Values(ids)))
}

func (c *checker) Calls() [][]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// harness is a running Client against a sim.
type harness struct {
	t       *testing.T
	sim     *kicksim.Sim
	c       *Client
	out     chan observation.Observation
	checker *checker
}

// start runs a client whose Out is buffered (observations are read with
// next). Options.URL, Out, Checker and Logger are filled in.
func start(t *testing.T, sim *kicksim.Sim, o Options) *harness {
	t.Helper()
	h := &harness{t: t, sim: sim, out: make(chan observation.Observation, 1024), checker: &checker{}}
	o.URL, o.Out, o.Checker, o.Logger = sim.PusherURL(), h.out, h.checker, logtest.New(t)
	if o.BackoffBase == 0 {
		o.BackoffBase, o.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.c = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// next returns the next observation.
func (h *harness) next() observation.Observation {
	h.t.Helper()
	select {
	case o := <-h.out:
		return o
	case <-time.After(10 * time.Second):
		h.t.Fatal("timed out waiting for an observation")
	}
	return observation.Observation{}
}

// nextStatus skips Coverage observations.
func (h *harness) nextStatus() observation.Observation {
	h.t.Helper()
	for {
		if o := h.next(); o.Kind == observation.Status {
			return o
		}
	}
}

// subscribeAll subscribes every streamer and waits until the sim has them.
func (h *harness) subscribeAll(streamers []kicksim.Streamer) {
	h.t.Helper()
	for _, st := range streamers {
		h.c.Subscribe(st.ChannelID, st.UserID)
	}
	h.waitSubscribed(streamers)
}

func (h *harness) waitSubscribed(streamers []kicksim.Streamer) {
	h.t.Helper()
	testwait.For(h.t, waitTimeout, "subscriptions on the sim", func() bool {
		for _, st := range streamers {
			if h.sim.Subscriptions(channelName(st.ChannelID)) != 1 {
				return false
			}
		}
		return true
	})
}

func userIDs(streamers []kicksim.Streamer) []int64 {
	out := make([]int64, 0, len(streamers))
	for _, st := range streamers {
		out = append(out, st.UserID)
	}
	slices.Sort(out)
	return out
}

// union returns the sorted distinct ids of lists.
func union(lists [][]int64) []int64 {
	var out []int64
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var ignoreObserved = cmpopts.IgnoreFields(observation.Observation{}, "ObservedAt")

func TestEventsBecomeObservations(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3), kicksim.WithSeed(7))
	h := start(t, sim, Options{})
	streamers := sim.Streamers()
	h.subscribeAll(streamers)
	st := streamers[1]
	cat := sim.Categories()[2]
	status := func(o observation.Observation) observation.Observation {
		o.Kind, o.Source, o.UserID, o.ChannelID = observation.Status, kickmonv1.Source_SOURCE_PUSHER, st.UserID, st.ChannelID
		return o
	}
	tests := []struct {
		name string
		act  func() error
		want func(now kicksim.Streamer) observation.Observation
	}{
		{"live", func() error { return sim.GoLive(st.UserID) }, func(now kicksim.Streamer) observation.Observation {
			at := now.PusherCreatedAt.UTC().Truncate(time.Microsecond)
			return status(observation.Observation{Live: observation.Live, StartedAt: at, KickTime: at, Provisional: true, HasTitle: true, Title: now.Title})
		}},
		{"title", func() error { return sim.SetTitle(st.UserID, "new title ✓") }, func(now kicksim.Streamer) observation.Observation {
			return status(observation.Observation{Live: observation.Live, StartedAt: now.StartedAt.UTC(), Provisional: true, HasTitle: true, Title: "new title ✓",
				HasViewers: true, Viewers: int64(now.Viewers), HasCategory: true, CategoryID: now.CategoryID, CategoryName: now.CategoryName})
		}},
		{"category", func() error { return sim.SetCategory(st.UserID, cat.ID) }, func(now kicksim.Streamer) observation.Observation {
			return status(observation.Observation{Live: observation.Live, StartedAt: now.StartedAt.UTC(), Provisional: true, HasTitle: true, Title: now.Title,
				HasViewers: true, Viewers: int64(now.Viewers), HasCategory: true, CategoryID: cat.ID, CategoryName: cat.Name})
		}},
		{"viewers", func() error { return sim.SetViewers(st.UserID, 4242) }, func(now kicksim.Streamer) observation.Observation {
			return status(observation.Observation{Live: observation.Live, StartedAt: now.StartedAt.UTC(), Provisional: true, HasTitle: true, Title: now.Title,
				HasViewers: true, Viewers: 4242, HasCategory: true, CategoryID: now.CategoryID, CategoryName: now.CategoryName})
		}},
		{"offline", func() error { return sim.GoOffline(st.UserID) }, func(kicksim.Streamer) observation.Observation {
			return status(observation.Observation{Live: observation.Offline})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.act(); err != nil {
				t.Fatal(err)
			}
			now, _ := sim.Streamer(st.UserID)
			got := h.nextStatus()
			if diff := cmp.Diff(tt.want(now), got, ignoreObserved); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
			if got.ObservedAt.IsZero() {
				t.Error("ObservedAt is zero")
			}
		})
	}
	t.Run("noise is counted, not emitted", func(t *testing.T) {
		before := h.c.Stats().Ignored
		if err := sim.EmitNoise(st.UserID); err != nil {
			t.Fatal(err)
		}
		if err := sim.EmitNoise(st.UserID); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, waitTimeout, "two ignored events", func() bool { return h.c.Stats().Ignored >= before+2 })
		if err := sim.GoLive(streamers[0].UserID); err != nil {
			t.Fatal(err)
		}
		if got := h.nextStatus(); got.UserID != streamers[0].UserID || got.Live != observation.Live {
			t.Errorf("after noise, got %+v; want live of user %d", got, streamers[0].UserID)
		}
	})
}

func TestAnswersServerPings(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1), kicksim.WithActivityTimeout(100*time.Millisecond), kicksim.WithPongTimeout(400*time.Millisecond))
	h := start(t, sim, Options{})
	h.subscribeAll(sim.Streamers())
	// The sim pings after 100 ms of client silence and closes with 4201
	// 400 ms later without an answer; the client itself pings only after
	// 1 s (the advertised timeout, rounded up) of server silence. Ten
	// pings take over a second: an unanswered one would have closed it.
	testwait.For(t, waitTimeout, "ten server pings", func() bool { return h.c.Stats().ServerPings >= 10 })
	st := h.c.Status()
	if len(st) != 1 || st[0].Reconnects != 0 || st[0].State != StateConnected {
		t.Errorf("status after answering pings: %+v; want one connected socket, no reconnect", st)
	}
}

func TestReconnect(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(*kicksim.Sim)
		wantCode int
		check    func(t *testing.T, st SocketStatus)
	}{
		{"dropped TCP connection", func(s *kicksim.Sim) { s.DropSockets() }, 1006, func(t *testing.T, st SocketStatus) {
			if st.Backoff > 100*time.Millisecond {
				t.Errorf("backoff %v above BackoffMax", st.Backoff)
			}
		}},
		{"4100 backs off at least 1s", func(s *kicksim.Sim) { s.CloseSockets(4100, "Over capacity") }, 4100, func(t *testing.T, st SocketStatus) {
			if st.Backoff < time.Second {
				t.Errorf("backoff %v after 4100; want >= 1s", st.Backoff)
			}
		}},
		{"4200 reconnects at once", func(s *kicksim.Sim) { s.CloseSockets(4200, "Generic reconnect") }, 4200, func(t *testing.T, st SocketStatus) {
			if st.Backoff != 0 {
				t.Errorf("backoff %v after 4200; want 0", st.Backoff)
			}
		}},
		{"stalled server, no pong", func(s *kicksim.Sim) { s.StallSockets(true) }, 0, func(t *testing.T, st SocketStatus) {
			if !strings.Contains(st.LastError, "no pong") {
				t.Errorf("last error %q; want a pong timeout", st.LastError)
			}
			if st.Backoff != 0 {
				t.Errorf("backoff %v after a pong timeout; want 0", st.Backoff)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := kicksim.Start(t, kicksim.WithStreamers(4))
			h := start(t, sim, Options{ChannelsPerSocket: 2, ActivityTimeout: 300 * time.Millisecond, PongTimeout: 500 * time.Millisecond})
			streamers := sim.Streamers()
			h.subscribeAll(streamers)
			if got := sim.Sockets(); got != 2 {
				t.Fatalf("sim has %d sockets; want 2 (4 channels, 2 per socket)", got)
			}
			tt.fault(sim)
			testwait.For(t, waitTimeout, "both sockets reconnected", func() bool {
				st := h.c.Status()
				return len(st) == 2 && st[0].Reconnects >= 1 && st[1].Reconnects >= 1 && st[0].State == StateConnected && st[1].State == StateConnected
			})
			h.waitSubscribed(streamers)
			for _, st := range h.c.Status() {
				if st.LastCloseCode != tt.wantCode {
					t.Errorf("socket %d: last close code %d; want %d", st.ID, st.LastCloseCode, tt.wantCode)
				}
				tt.check(t, st)
			}
			// Every streamer is reconciled, after each socket's reconnect
			// (a loaded machine may add a reconnect; the union counts).
			testwait.For(t, waitTimeout, "reconcile requests for every streamer", func() bool {
				return cmp.Equal(userIDs(streamers), union(h.checker.Calls()))
			})
			// Each socket went blind and came back.
			var blind, back [][]int64
			for !cmp.Equal(userIDs(streamers), union(back)) {
				o := h.next()
				if o.Kind != observation.Coverage || o.Reason != BlindReason || o.Source != kickmonv1.Source_SOURCE_PUSHER {
					t.Fatalf("unexpected observation %+v", o)
				}
				if o.Blind {
					blind = append(blind, o.UserIDs)
				} else {
					back = append(back, o.UserIDs)
				}
			}
			if diff := cmp.Diff(userIDs(streamers), union(blind)); diff != "" {
				t.Errorf("blind users (-want +got):\n%s", diff)
			}
			// Events flow on the new connections.
			last := streamers[3]
			if err := sim.GoLive(last.UserID); err != nil {
				t.Fatal(err)
			}
			if o := h.nextStatus(); o.UserID != last.UserID || o.Live != observation.Live {
				t.Errorf("after reconnect got %+v; want live of user %d", o, last.UserID)
			}
		})
	}
}

func TestImmediateReconnectsAreLimited(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	h := start(t, sim, Options{})
	h.subscribeAll(sim.Streamers())
	var backoffs []time.Duration
	for i := 1; i <= maxImmediate+1; i++ {
		sim.CloseSockets(4200, "Generic reconnect")
		testwait.For(t, waitTimeout, "reconnected", func() bool {
			st := h.c.Status()
			return len(st) == 1 && st[0].Reconnects == i && st[0].State == StateConnected
		})
		backoffs = append(backoffs, h.c.Status()[0].Backoff)
	}
	// Well within immediateWindow on any machine: three at once, then the
	// jittered backoff (uniform in [0, 20ms]: 0 once in 20 million).
	for i, d := range backoffs {
		if wantNow := i < maxImmediate; wantNow != (d == 0) {
			t.Errorf("reconnect %d waited %v; want at once: %v", i+1, d, wantNow)
		}
	}
}

func TestImmediatesAllow(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name string
		at   []time.Time
		want []bool
	}{
		{"three at once, then back off", []time.Time{at(0), at(time.Second), at(2 * time.Second), at(3 * time.Second), at(9 * time.Second)},
			[]bool{true, true, true, false, false}},
		{"the window slides", []time.Time{at(0), at(time.Second), at(2 * time.Second), at(10 * time.Second), at(10500 * time.Millisecond), at(11 * time.Second)},
			[]bool{true, true, true, true, false, true}},
		{"spread out, always at once", []time.Time{at(0), at(5 * time.Second), at(11 * time.Second), at(17 * time.Second), at(23 * time.Second)},
			[]bool{true, true, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var im immediates
			var got []bool
			for _, now := range tt.at {
				got = append(got, im.allow(now))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("allow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStopOn4000Family(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	h := start(t, sim, Options{})
	streamers := sim.Streamers()
	h.subscribeAll(streamers)
	sim.CloseSockets(4001, "App key not in this cluster")
	testwait.For(t, waitTimeout, "socket stopped", func() bool {
		st := h.c.Status()
		return len(st) == 1 && st[0].State == StateStopped
	})
	st := h.c.Status()[0]
	if st.LastCloseCode != 4001 || st.Reconnects != 0 {
		t.Errorf("status %+v; want close code 4001 and no reconnect", st)
	}
	o := h.next()
	want := observation.Observation{Kind: observation.Coverage, Source: kickmonv1.Source_SOURCE_PUSHER, UserIDs: userIDs(streamers), Blind: true, Reason: StoppedReason + " by close code 4001"}
	slices.Sort(o.UserIDs)
	if diff := cmp.Diff(want, o, ignoreObserved); diff != "" {
		t.Errorf("coverage (-want +got):\n%s", diff)
	}
	if got := sim.Sockets(); got != 0 {
		t.Errorf("sim has %d sockets after 4001; want 0", got)
	}
	if calls := h.checker.Calls(); len(calls) != 0 {
		t.Errorf("reconcile calls %v; want none", calls)
	}
}

// coverage is what the last Coverage observation said about a streamer.
type coverage struct {
	Blind  bool
	Reason string
}

// coverageUntil reads observations, applying Coverage ones to got, until
// done(got) holds.
func (h *harness) coverageUntil(got map[int64]coverage, done func(map[int64]coverage) bool) {
	h.t.Helper()
	for !done(got) {
		o := h.next()
		if o.Kind != observation.Coverage || o.Source != kickmonv1.Source_SOURCE_PUSHER {
			h.t.Fatalf("unexpected observation %+v", o)
		}
		for _, uid := range o.UserIDs {
			got[uid] = coverage{o.Blind, o.Reason}
		}
	}
}

func TestRefusedSubscriptions(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(4))
	streamers := sim.Streamers()
	byError, byPusherError := streamers[0], streamers[1]
	sim.RefuseChannel(channelName(byError.ChannelID), kicksim.RefuseSubscriptionError)
	sim.RefuseChannel(channelName(byPusherError.ChannelID), kicksim.RefusePusherError)
	h := start(t, sim, Options{})
	for _, st := range streamers {
		h.c.Subscribe(st.ChannelID, st.UserID)
	}
	refusedErr := coverage{true, RefusedReason + ": Subscription to " + channelName(byError.ChannelID) + " is not allowed (403)"}
	refusedPusher := coverage{true, RefusedReason + ": Subscription to " + channelName(byPusherError.ChannelID) + " is not allowed"}
	seen := coverage{false, BlindReason}

	// A first connection reports only the refused channels, blind.
	got := make(map[int64]coverage)
	h.coverageUntil(got, func(m map[int64]coverage) bool { return len(m) >= 2 })
	want := map[int64]coverage{byError.UserID: refusedErr, byPusherError.UserID: refusedPusher}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("coverage after the first connection (-want +got):\n%s", diff)
	}
	h.waitSubscribed(streamers[2:])
	testwait.For(t, waitTimeout, "2 confirmed and 2 refused channels", func() bool {
		st := h.c.Status()
		return len(st) == 1 && st[0].Wanted == 4 && st[0].Channels == 2 && st[0].Refused == 2
	})
	if n := h.c.Stats().Refusals; n != 2 {
		t.Errorf("Stats().Refusals = %d; want 2", n)
	}

	// After a reconnect only the confirmed channels are seen again; one
	// that Kick accepts now is among them.
	sim.RefuseChannel(channelName(byPusherError.ChannelID), kicksim.Accept)
	sim.DropSockets()
	got = make(map[int64]coverage)
	h.coverageUntil(got, func(m map[int64]coverage) bool {
		if len(m) < len(streamers) {
			return false
		}
		for _, c := range m {
			if c.Blind && c.Reason == BlindReason {
				return false
			}
		}
		return true
	})
	want = map[int64]coverage{byError.UserID: refusedErr, byPusherError.UserID: seen, streamers[2].UserID: seen, streamers[3].UserID: seen}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("coverage after a reconnect (-want +got):\n%s", diff)
	}
	testwait.For(t, waitTimeout, "3 confirmed and 1 refused channels", func() bool {
		st := h.c.Status()
		return len(st) == 1 && st[0].Channels == 3 && st[0].Refused == 1
	})
	h.waitSubscribed(streamers[1:])
}

func TestNoChannelsLostOnAStoppedSocket(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(4))
	streamers := sim.Streamers()
	h := start(t, sim, Options{ChannelsPerSocket: 2})
	h.subscribeAll(streamers[:1])
	sim.CloseSockets(4001, "App key not in this cluster")
	stopped := coverage{true, StoppedReason + " by close code 4001"}
	got := make(map[int64]coverage)
	h.coverageUntil(got, func(m map[int64]coverage) bool { return len(m) == 1 })
	if diff := cmp.Diff(map[int64]coverage{streamers[0].UserID: stopped}, got); diff != "" {
		t.Errorf("coverage after the stop (-want +got):\n%s", diff)
	}
	testwait.For(t, waitTimeout, "socket stopped", func() bool {
		st := h.c.Status()
		return len(st) == 1 && st[0].State == StateStopped
	})

	// The stopped socket has room for one more; the next one would need a
	// new socket, which the same app key would stop too. Both are reported
	// blind with the stop reason instead, on the stopped socket.
	for _, st := range streamers[1:3] {
		h.c.Subscribe(st.ChannelID, st.UserID)
	}
	h.coverageUntil(got, func(m map[int64]coverage) bool { return len(m) == 3 })
	if diff := cmp.Diff(map[int64]coverage{streamers[0].UserID: stopped, streamers[1].UserID: stopped, streamers[2].UserID: stopped}, got); diff != "" {
		t.Errorf("coverage of channels placed after the stop (-want +got):\n%s", diff)
	}
	// A streamer removed and added again is reported again, even when it
	// is the last one.
	for _, st := range streamers[:3] {
		h.c.Unsubscribe(st.ChannelID)
	}
	h.c.Subscribe(streamers[3].ChannelID, streamers[3].UserID)
	h.c.Subscribe(streamers[0].ChannelID, streamers[0].UserID)
	got = make(map[int64]coverage)
	h.coverageUntil(got, func(m map[int64]coverage) bool { return len(m) == 2 })
	want := map[int64]coverage{streamers[0].UserID: stopped, streamers[3].UserID: stopped}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("coverage (-want +got):\n%s", diff)
	}
	var sockets []SocketStatus
	for _, st := range h.c.Status() {
		sockets = append(sockets, SocketStatus{ID: st.ID, State: st.State, Wanted: st.Wanted, LastCloseCode: st.LastCloseCode})
	}
	if diff := cmp.Diff([]SocketStatus{{ID: 1, State: StateStopped, Wanted: 2, LastCloseCode: 4001}}, sockets); diff != "" {
		t.Errorf("sockets (-want +got):\n%s", diff)
	}
	if n := sim.Sockets(); n != 0 {
		t.Errorf("sim has %d sockets; want 0", n)
	}
}

func TestSubscribeUnsubscribeAtRunTime(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(5))
	h := start(t, sim, Options{ChannelsPerSocket: 2})
	streamers := sim.Streamers()
	h.subscribeAll(streamers[:2])
	testwait.For(t, waitTimeout, "one socket connected", func() bool {
		st := h.c.Status()
		return len(st) == 1 && st[0].State == StateConnected
	})
	h.subscribeAll(streamers[2:])
	testwait.For(t, waitTimeout, "three sockets", func() bool { return sim.Sockets() == 3 })

	h.c.Unsubscribe(streamers[0].ChannelID)
	testwait.For(t, waitTimeout, "unsubscribed on the sim", func() bool { return sim.Subscriptions(channelName(streamers[0].ChannelID)) == 0 })
	h.c.Unsubscribe(streamers[4].ChannelID) // the only channel of socket 3
	testwait.For(t, waitTimeout, "socket 3 closed", func() bool { return sim.Sockets() == 2 })

	var got []SocketStatus
	for _, st := range h.c.Status() {
		got = append(got, SocketStatus{ID: st.ID, Wanted: st.Wanted, Reconnects: st.Reconnects})
	}
	want := []SocketStatus{{ID: 1, Wanted: 1}, {ID: 2, Wanted: 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sockets (-want +got):\n%s", diff)
	}
	// Unsubscribed streamers are silent; subscribed ones are heard.
	for _, st := range []kicksim.Streamer{streamers[0], streamers[4], streamers[1]} {
		if err := sim.GoLive(st.UserID); err != nil {
			t.Fatal(err)
		}
	}
	if o := h.nextStatus(); o.UserID != streamers[1].UserID {
		t.Errorf("first observation is for user %d; want %d (others unsubscribed)", o.UserID, streamers[1].UserID)
	}
	// A new subscription reuses the free slot of socket 1 without reconnecting.
	h.c.Subscribe(streamers[0].ChannelID, streamers[0].UserID)
	h.waitSubscribed(streamers[:4])
	if n := sim.Sockets(); n != 2 {
		t.Errorf("sim has %d sockets; want 2", n)
	}
	for _, st := range h.c.Status() {
		if st.Reconnects != 0 {
			t.Errorf("socket %d reconnected %d times; want 0", st.ID, st.Reconnects)
		}
	}
	if calls := h.checker.Calls(); len(calls) != 0 {
		t.Errorf("reconcile calls %v without a reconnect", calls)
	}
}

func TestNewValidates(t *testing.T) {
	out := make(chan observation.Observation)
	tests := []struct {
		name string
		o    Options
	}{
		{"no out", Options{URL: "ws://127.0.0.1:1/app/x"}},
		{"http scheme", Options{URL: "http://127.0.0.1:1/app/x", Out: out}},
		{"negative", Options{URL: "ws://127.0.0.1:1/app/x", Out: out, ChannelsPerSocket: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); err == nil {
				t.Error("New succeeded; want an error")
			}
		})
	}
}
