package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
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
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait for a condition.
const waitTimeout = 20 * time.Second

// stamps is a transport that records when each API request left.
type stamps struct {
	next http.RoundTripper
	mu   sync.Mutex
	at   map[string][]time.Time
	// Requests in flight now and at most, by path.
	inFlight, maxInFlight map[string]int
}

func (s *stamps) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.at[r.URL.Path] = append(s.at[r.URL.Path], time.Now())
	if s.inFlight == nil {
		s.inFlight, s.maxInFlight = map[string]int{}, map[string]int{}
	}
	s.inFlight[r.URL.Path]++
	s.maxInFlight[r.URL.Path] = max(s.maxInFlight[r.URL.Path], s.inFlight[r.URL.Path])
	s.mu.Unlock()
	resp, err := s.next.RoundTrip(r)
	s.mu.Lock()
	s.inFlight[r.URL.Path]--
	s.mu.Unlock()
	return resp, err
}

func (s *stamps) times(path string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.at[path])
}

// harness is a poller against a kicksim, with its observations collected.
type harness struct {
	t      *testing.T
	sim    *kicksim.Sim
	client *kickrest.Client
	p      *Poller
	stamps *stamps

	mu      sync.Mutex
	obs     []observation.Observation
	batches []batch
	cancel  context.CancelFunc
	done    chan struct{}
}

type batch struct {
	round int
	ids   []int64
	// channelsBefore is the sim's channels request count when the batch
	// was about to be sent.
	channelsBefore int
}

type setup struct {
	sim    []kicksim.Option
	client func(*kickrest.Config)
	opts   func(*Options)
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	sim := kicksim.Start(t, s.sim...)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h := &harness{t: t, sim: sim, stamps: &stamps{next: tr, at: map[string][]time.Time{}}, done: make(chan struct{})}
	cfg := kickrest.Config{
		ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), AuthURL: sim.AuthURL(), APIURL: sim.APIURL(),
		AllowInsecure: true, Budget: -1, Transport: h.stamps, Logger: logtest.New(t),
	}
	if s.client != nil {
		s.client(&cfg)
	}
	c, err := kickrest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	out := make(chan observation.Observation, 16)
	o := Options{
		Interval: time.Second, Out: out, Logger: logtest.New(t),
		BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BreakerTimeout: 200 * time.Millisecond,
		onBatch: func(round int, ids []int64) {
			h.mu.Lock()
			h.batches = append(h.batches, batch{round: round, ids: ids, channelsBefore: sim.Requests(kicksim.EndpointChannels)})
			h.mu.Unlock()
		},
	}
	if s.opts != nil {
		s.opts(&o)
	}
	p, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.cancel = func() {}
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			select {
			case o := <-out:
				h.mu.Lock()
				h.obs = append(h.obs, o)
				h.mu.Unlock()
			case <-h.done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("poller status at the end: %+v", h.p.Status())
		}
		h.stop()
		close(h.done)
		<-collected
	})
	return h
}

// run starts the poller; stop (or the cleanup) ends it.
func (h *harness) run() {
	stopped := make(chan struct{})
	ctx, cancel := context.WithCancel(h.t.Context())
	h.cancel = func() { cancel(); <-stopped }
	go func() {
		defer close(stopped)
		if err := h.p.Run(ctx); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
}

func (h *harness) stop() { h.cancel() }

func (h *harness) watchAll() []kicksim.Streamer {
	ss := h.sim.Streamers()
	for _, s := range ss {
		h.p.Watch(s.UserID, 0)
	}
	return ss
}

// waitFor polls cond over the collected observations and batches until it
// holds, failing the test after waitTimeout.
func (h *harness) waitFor(what string, cond func(obs []observation.Observation, batches []batch) bool) {
	h.t.Helper()
	testwait.For(h.t, waitTimeout, what, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return cond(h.obs, h.batches)
	})
}

// waitStatus polls the poller's status until cond holds and returns it.
func (h *harness) waitStatus(what string, cond func(Status) bool) Status {
	h.t.Helper()
	var st Status
	testwait.For(h.t, waitTimeout, what, func() bool {
		st = h.p.Status()
		return cond(st)
	})
	return st
}

func sawRound(n int) func([]observation.Observation, []batch) bool {
	return func(_ []observation.Observation, bs []batch) bool {
		return len(bs) > 0 && bs[len(bs)-1].round >= n
	}
}

func TestBatchesOf50EveryRound(t *testing.T) {
	for _, n := range []int{1, 50, 51, 120} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(n), kicksim.WithLiveFraction(0.3)}})
			ss := h.watchAll()
			h.run()
			h.waitFor("round 3", sawRound(3))
			h.stop()
			h.mu.Lock()
			defer h.mu.Unlock()
			want := (n + 49) / 50
			first3 := slices.IndexFunc(h.batches, func(b batch) bool { return b.round == 3 })
			// Every request of rounds 1 and 2 reached Kick, and only those.
			if got := h.batches[first3].channelsBefore; got != 2*want {
				t.Errorf("kicksim saw %d channels requests in two rounds, want %d", got, 2*want)
			}
			all := userIDsOf(ss)
			for round := 1; round <= 2; round++ {
				var ids []int64
				reqs := 0
				for _, b := range h.batches {
					if b.round != round {
						continue
					}
					reqs++
					if len(b.ids) > 50 {
						t.Errorf("round %d: a batch of %d", round, len(b.ids))
					}
					ids = append(ids, b.ids...)
				}
				slices.Sort(ids)
				if reqs != want || !slices.Equal(ids, all) {
					t.Errorf("round %d: %d requests covering %d ids, want %d requests covering all %d once", round, reqs, len(ids), want, n)
				}
			}
			// Every streamer of every response was observed, with its state.
			seen := map[int64]int{}
			for _, o := range h.obs {
				if o.Kind == observation.Status {
					seen[o.UserID]++
				}
			}
			for _, s := range ss {
				if seen[s.UserID] < 2 {
					t.Errorf("user %d observed %d times in two rounds", s.UserID, seen[s.UserID])
				}
			}
		})
	}
}

// With slow answers, requests overlap up to Options.InFlight, never more;
// with the default, one at a time.
func TestRequestsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inFlight int
		want     func(max int) bool
	}{
		{"default: one at a time", 0, func(m int) bool { return m == 1 }},
		{"up to 4", 4, func(m int) bool { return m >= 2 && m <= 4 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// 400 streamers: 8 requests a 1 s round, one due every 125 ms,
			// each answered after 400 ms.
			h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(400), kicksim.WithLiveFraction(0)},
				opts: func(o *Options) { o.InFlight = tc.inFlight }})
			h.sim.FailNext(kicksim.EndpointChannels, 1000, kicksim.FaultSlow(400*time.Millisecond))
			h.watchAll()
			h.run()
			h.waitFor("round 2", sawRound(2))
			h.stop()
			h.stamps.mu.Lock()
			got := h.stamps.maxInFlight["/public/v1/channels"]
			h.stamps.mu.Unlock()
			if !tc.want(got) {
				t.Errorf("at most %d channels requests in flight", got)
			}
		})
	}
}

// Streamers without a channel id (no realtime coverage) are refreshed
// more often than the others when the budget leaves room, and only then.
func TestUncoveredPolledMoreOften(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int
		more   bool
		every  time.Duration // Status.UncoveredEvery
	}{
		{"room in the budget", 10_000, true, time.Second / 3},
		// 50 uncovered (one batch) every 333 ms is 180 requests a minute;
		// half the budget less the rounds' 120 leaves 380.
		{"room for less", 1_000, true, time.Second / 3},
		// 220 − 120 leaves 100 requests a minute: one batch every 0.6 s.
		{"room for a slower pace", 440, true, 600 * time.Millisecond},
		// The routine rounds need 120 requests a minute: no room.
		{"budget taken by the rounds", 100, false, 0},
		{"no budget given", 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(100), kicksim.WithLiveFraction(0)},
				opts: func(o *Options) { o.Budget = tc.budget }})
			ss := h.sim.Streamers()
			covered := map[int64]bool{}
			for i, s := range ss {
				if i%2 == 0 {
					h.p.Watch(s.UserID, s.ChannelID) // the operator gave it
					covered[s.UserID] = true
				} else {
					h.p.Watch(s.UserID, 0)
				}
			}
			h.run()
			h.waitFor("round 4", sawRound(4))
			st := h.p.Status()
			h.stop()
			if st.Uncovered != 50 || st.UncoveredEvery != tc.every {
				t.Errorf("status: %d uncovered, refreshed every %s; want 50 every %s", st.Uncovered, st.UncoveredEvery, tc.every)
			}
			if got := st.RequestsBy[ReasonUncovered] > 0; got != tc.more {
				t.Errorf("requests by reason %v: extra requests for the uncovered = %v, want %v", st.RequestsBy, got, tc.more)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			polled := map[int64]int{}
			for _, b := range h.batches {
				for _, id := range b.ids {
					polled[id]++
				}
			}
			maxCovered, minUncovered, maxUncovered := 0, 1<<30, 0
			for _, s := range ss {
				if covered[s.UserID] {
					maxCovered = max(maxCovered, polled[s.UserID])
				} else {
					minUncovered, maxUncovered = min(minUncovered, polled[s.UserID]), max(maxUncovered, polled[s.UserID])
				}
			}
			if tc.more && minUncovered <= maxCovered {
				t.Errorf("uncovered streamers polled %d–%d times, covered up to %d: want more", minUncovered, maxUncovered, maxCovered)
			}
			if !tc.more && maxUncovered > maxCovered+1 {
				t.Errorf("uncovered streamers polled up to %d times, covered up to %d: want no extra refreshes", maxUncovered, maxCovered)
			}
		})
	}
}

func userIDsOf(ss []kicksim.Streamer) []int64 {
	ids := make([]int64, len(ss))
	for i, s := range ss {
		ids[i] = s.UserID
	}
	slices.Sort(ids)
	return ids
}

func TestObservationsCarryTheOfficialState(t *testing.T) {
	var logs lockedBuffer
	h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(60), kicksim.WithLiveFraction(0.5), kicksim.WithSeed(5)},
		opts: func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) }})
	ss := h.watchAll()
	byID := map[int64]kicksim.Streamer{}
	for _, s := range ss {
		byID[s.UserID] = s
	}
	h.run()
	h.waitFor("round 2", sawRound(2))
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	lives := 0
	for _, o := range h.obs {
		s := byID[o.UserID]
		if o.Kind != observation.Status || o.Source.String() != "SOURCE_POLL" || o.Slug != s.Slug || o.ObservedAt.IsZero() || o.KickTime.IsZero() {
			t.Fatalf("observation %+v", o)
		}
		if !s.Live {
			if o.Live != observation.Offline || o.HasTitle || o.HasCategory || o.HasViewers || o.Thumbnail != "" || !o.StartedAt.IsZero() {
				t.Errorf("offline user %d: %+v", s.UserID, o)
			}
			continue
		}
		lives++
		if o.Live != observation.Live || !o.StartedAt.Equal(s.StartedAt) || !o.HasTitle || o.Title != s.Title ||
			!o.HasCategory || o.CategoryID != s.CategoryID || o.CategoryName != s.CategoryName || !o.HasViewers || o.Viewers != int64(s.Viewers) {
			t.Errorf("live user %d: %+v, want %+v", s.UserID, o, s)
		}
		// kicksim's thumbnails name the livestream.
		if !strings.Contains(o.Thumbnail, "/"+strconv.FormatInt(s.LivestreamID, 10)+"/") {
			t.Errorf("live user %d: thumbnail %q, want livestream %d's", s.UserID, o.Thumbnail, s.LivestreamID)
		}
		// The channel id comes from the v1 livestreams endpoint.
		if o.ChannelID != s.ChannelID {
			t.Errorf("live user %d: channel id %d, want %d", s.UserID, o.ChannelID, s.ChannelID)
		}
	}
	if lives == 0 {
		t.Fatal("no live streamer observed")
	}
	// One livestreams request per batch with a live streamer, in the first
	// round only: afterwards the channel ids are known.
	wantLS := 0
	for _, b := range h.batches {
		if b.round != 1 {
			continue
		}
		if slices.ContainsFunc(b.ids, func(id int64) bool { return byID[id].Live }) {
			wantLS++
		}
	}
	if got := h.sim.Requests(kicksim.EndpointLivestreams); got != wantLS {
		t.Errorf("livestreams requests = %d, want %d", got, wantLS)
	}
	// The channel ids learned are one info line for the round, not one
	// line each (30k lines when 100k streamers are added).
	var summaries []float64
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch m["msg"] {
		case "learned channel id":
			t.Errorf("a line per channel id at info: %s", line)
		case "learned channel ids in the last round":
			summaries = append(summaries, m["count"].(float64))
		}
	}
	if len(summaries) != 1 || int(summaries[0]) != lives {
		t.Errorf("summary lines %v, want one with count %d", summaries, lives)
	}
}

// lockedBuffer is a bytes.Buffer safe for the poller's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestOperatorChannelIDSkipsLivestreams(t *testing.T) {
	h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(3), kicksim.WithLiveFraction(1)}})
	for _, s := range h.sim.Streamers() {
		h.p.Watch(s.UserID, s.ChannelID)
	}
	h.run()
	h.waitFor("round 2", sawRound(2))
	h.stop()
	if got := h.sim.Requests(kicksim.EndpointLivestreams); got != 0 {
		t.Errorf("livestreams requests = %d, want 0 (channel ids given)", got)
	}
}

func TestCheckNowGoesFirstAndCoalesces(t *testing.T) {
	// A long interval: after the first batch, the routine refresh waits
	// 10 s for its next slot, so the next batch is the check's.
	h := newHarness(t, setup{
		sim:  []kicksim.Option{kicksim.WithStreamers(120)},
		opts: func(o *Options) { o.Interval = 30 * time.Second },
	})
	ss := h.watchAll()
	h.p.CheckNow(1, 2, 3) // unknown ids are ignored
	h.run()
	h.waitFor("the first batch's observations", func(obs []observation.Observation, bs []batch) bool { return len(bs) == 1 && len(obs) == 50 })
	h.mu.Lock()
	first := slices.Clone(h.batches[0].ids)
	h.mu.Unlock()
	var target kicksim.Streamer
	for _, s := range ss {
		if !slices.Contains(first, s.UserID) {
			target = s
			break
		}
	}
	if err := h.sim.GoLive(target.UserID); err != nil {
		t.Fatal(err)
	}
	h.p.CheckNow(target.UserID, target.UserID)
	h.waitFor("the check's live observation", func(obs []observation.Observation, _ []batch) bool {
		return slices.ContainsFunc(obs, func(o observation.Observation) bool { return o.UserID == target.UserID && o.Live == observation.Live })
	})
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.batches) != 2 {
		t.Fatalf("%d batches, want 2", len(h.batches))
	}
	second := h.batches[1].ids
	if second[0] != target.UserID || len(second) != 50 {
		t.Errorf("second batch starts with %d and has %d ids; want the checked %d first, filled to 50", second[0], len(second), target.UserID)
	}
	for _, id := range second {
		if slices.Contains(first, id) {
			t.Errorf("user %d refreshed twice in one round", id)
		}
	}
	// The check's request counts as a check, the routine ids it carries
	// as the round's refreshes, and the target's channel id as livestreams.
	st := h.p.Status()
	wantReq := map[string]int64{ReasonRound: 1, ReasonCheck: 1, ReasonUncovered: 0, ReasonLivestreams: int64(h.sim.Requests(kicksim.EndpointLivestreams))}
	wantRef := map[string]int64{ReasonRound: 99, ReasonCheck: 1, ReasonUncovered: 0}
	if diff := cmp.Diff(wantReq, st.RequestsBy); diff != "" {
		t.Errorf("requests by reason (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRef, st.RefreshesBy); diff != "" {
		t.Errorf("refreshes by reason (-want +got):\n%s", diff)
	}
}

func TestCheckNowNeverBlocks(t *testing.T) {
	h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(2)}})
	ss := h.watchAll()
	for range 10000 { // the poller is not running: nobody drains anything
		h.p.CheckNow(ss[0].UserID, ss[1].UserID, 42)
	}
	if st := h.p.Status(); st.Pending != 2 {
		t.Errorf("pending = %d, want 2 (coalesced)", st.Pending)
	}
	h.p.Unwatch(ss[0].UserID)
	h.run()
	h.waitFor("one batch", func(_ []observation.Observation, bs []batch) bool { return len(bs) > 0 })
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := h.batches[0].ids; !slices.Equal(got, []int64{ss[1].UserID}) {
		t.Errorf("first batch %v, want only the still watched %d", got, ss[1].UserID)
	}
}

func TestNewValidates(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	c, err := kickrest.New(kickrest.Config{ClientID: "a", ClientSecret: "b", APIURL: sim.APIURL(), AuthURL: sim.AuthURL(), AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan observation.Observation)
	tests := []struct {
		name string
		c    *kickrest.Client
		o    Options
	}{
		{"nil client", nil, Options{Out: out}},
		{"nil out", c, Options{}},
		{"interval too short", c, Options{Out: out, Interval: 500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.c, tt.o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	p, err := New(c, Options{Out: out})
	if err != nil || p.o.Interval != DefaultInterval || p.o.BlindAfter != 2*DefaultInterval {
		t.Errorf("defaults: %+v, %v", p.o, err)
	}
}

// gone answers every livestreams request with status, as Kick will once the
// deprecated endpoint is removed; other requests go to next.
type gone struct {
	next   http.RoundTripper
	status int
	asked  atomic.Int64
}

func (g *gone) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/public/v1/livestreams" {
		return g.next.RoundTrip(r)
	}
	g.asked.Add(1)
	body := `{"message":"Not Found"}`
	return &http.Response{StatusCode: g.status, Status: http.StatusText(g.status), Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// TestLivestreamsGone: when the deprecated livestreams endpoint answers 404
// or 410, the poller stops asking it, keeps polling, says so in Status, and
// tells the monitor once per streamer why it has no channel id.
func TestLivestreamsGone(t *testing.T) {
	for _, status := range []int{http.StatusGone, http.StatusNotFound} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			g := &gone{status: status}
			h := newHarness(t, setup{
				sim:    []kicksim.Option{kicksim.WithStreamers(4), kicksim.WithLiveFraction(1)},
				client: func(c *kickrest.Config) { g.next = c.Transport; c.Transport = g },
			})
			ss := h.watchAll()
			h.run()
			h.waitFor("round 3", sawRound(3))
			st := h.waitStatus("the endpoint reported gone", func(s Status) bool { return s.LivestreamsGone == status })
			if st.Health != HealthOK || st.Breakers[EndpointLivestreams] != fmt.Sprintf("gone(%d)", status) {
				t.Errorf("status %+v; want ok, livestreams gone(%d)", st, status)
			}
			h.stop()
			if n := g.asked.Load(); n != 1 {
				t.Errorf("livestreams asked %d times; want once", n)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			var told []int64
			lives := 0
			for _, o := range h.obs {
				switch {
				case o.Kind == observation.Coverage:
					want := fmt.Sprintf("no channel id: livestreams endpoint gone (%d)", status)
					if !o.Blind || o.Reason != want {
						t.Errorf("coverage %+v; want blind %q", o, want)
					}
					told = append(told, o.UserIDs...)
				case o.Live == observation.Live:
					lives++
				}
			}
			if !cmp.Equal(slices.Sorted(slices.Values(told)), userIDsOf(ss)) {
				t.Errorf("told %v; want every streamer once: %v", told, userIDsOf(ss))
			}
			if lives < len(ss) {
				t.Errorf("%d live observations; polling must carry on", lives)
			}
		})
	}
}

// Streamers added while a round runs join that round, in full batches.
// Before, a bulk add waited for the next round, and a round
// started with an empty watch list (a fresh deployment) refreshed nobody
// for a whole interval.
func TestStreamersAddedDuringARoundJoinIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  int   // watched when the poller starts
		chunks  []int // then added while it runs, one chunk after the other's first request
		budget  int
		wantReq int // channels requests in round 1
	}{
		{"fresh deployment, chunks of 50", 0, []int{50, 100, 50}, 0, 4},
		{"added to a watched 100", 100, []int{100, 50}, 0, 5},
		{"with budget for the uncovered", 0, []int{100, 100}, 10_000, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			total := tc.before
			for _, c := range tc.chunks {
				total += c
			}
			h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(total), kicksim.WithLiveFraction(0)},
				opts: func(o *Options) { o.Interval, o.Budget = 8*time.Second, tc.budget }})
			ss := h.sim.Streamers()
			for _, s := range ss[:tc.before] {
				h.p.Watch(s.UserID, 0)
			}
			h.run()
			h.waitStatus("round 1", func(st Status) bool { return st.Rounds == 1 })
			at := tc.before
			for _, c := range tc.chunks {
				for _, s := range ss[at : at+c] {
					h.p.Watch(s.UserID, 0)
				}
				at += c
				want := ss[at-1].UserID
				h.waitFor(fmt.Sprintf("a request for user %d", want), func(_ []observation.Observation, bs []batch) bool {
					return slices.ContainsFunc(bs, func(b batch) bool { return slices.Contains(b.ids, want) })
				})
			}
			h.waitFor("every streamer asked for", func(_ []observation.Observation, bs []batch) bool {
				var ids []int64
				for _, b := range bs {
					ids = append(ids, b.ids...)
				}
				slices.Sort(ids)
				return len(slices.Compact(ids)) == total
			})
			st := h.p.Status()
			h.stop()
			h.mu.Lock()
			defer h.mu.Unlock()
			reqs := 0
			for _, b := range h.batches {
				if b.round != 1 {
					t.Errorf("a request in round %d: every streamer should have been asked for in round 1", b.round)
				}
				reqs++
			}
			// Full batches, but the poller may see a chunk half added (one
			// Watch at a time) and send that part first: one more request
			// per chunk at most.
			if most := tc.wantReq + len(tc.chunks); tc.budget == 0 && (reqs < tc.wantReq || reqs > most || st.RequestsBy[ReasonRound] != int64(reqs)) {
				t.Errorf("%d requests (%d for the round), want %d–%d", reqs, st.RequestsBy[ReasonRound], tc.wantReq, most)
			}
			if tc.budget > 0 && st.RequestsBy[ReasonUncovered] == 0 {
				t.Errorf("requests by reason %v: want new streamers without a channel id asked for as uncovered first", st.RequestsBy)
			}
		})
	}
}
