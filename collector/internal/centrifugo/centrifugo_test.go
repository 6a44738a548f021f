package centrifugo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/centrifugo"
	"github.com/kickmon/kickmon/collector/internal/centrifugo/centrifugotest"
	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

const waitTimeout = time.Minute

// checker records out-of-turn check requests.
type checker struct {
	mu    sync.Mutex
	calls [][]int64
}

func (c *checker) CheckNow(ids ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, slices.Sorted(slices.Values(ids)))
}

func (c *checker) all() [][]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// harness runs a Client against a real Centrifugo server.
type harness struct {
	srv    *centrifugotest.Server
	c      *centrifugo.Client
	out    chan observation.Observation
	check  *checker
	tokens atomic.Int64
	runErr chan error
}

type config struct {
	perSocket int
	ttl       time.Duration
	refuse    *atomic.Bool // the token endpoint refuses while set
	origin    string
}

func start(t *testing.T, srv *centrifugotest.Server, cfg config) *harness {
	t.Helper()
	h := &harness{srv: srv, out: make(chan observation.Observation, 1024), check: &checker{}, runErr: make(chan error, 1)}
	if cfg.ttl == 0 {
		cfg.ttl = time.Hour
	}
	origin := cfg.origin
	if origin == "" {
		origin = realtime.DefaultOrigin
	}
	c, err := centrifugo.New(centrifugo.Options{
		URL: srv.URL, Origin: origin, ChannelsPerSocket: cfg.perSocket, Out: h.out, Checker: h.check, Logger: logtest.New(t),
		MinReconnect: 50 * time.Millisecond, MaxReconnect: time.Second,
		Token: func(ctx context.Context) (string, error) {
			h.tokens.Add(1)
			if cfg.refuse != nil && cfg.refuse.Load() {
				return "", fmt.Errorf("%w: token: 403 Forbidden", realtime.ErrTokenRefused)
			}
			return srv.Token("kickmon-test", cfg.ttl), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.runErr <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.runErr:
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// subscribed waits until the server has n subscribers on every channel.
func (h *harness) subscribed(t *testing.T, channels ...int64) {
	t.Helper()
	for _, ch := range channels {
		testwait.For(t, waitTimeout, "a subscriber on "+realtime.ChannelName(ch), func() bool {
			n, err := h.srv.Subscribers(realtime.ChannelName(ch))
			return err == nil && n == 1
		})
	}
}

// next returns the next observation matching keep.
func (h *harness) next(t *testing.T, what string, keep func(observation.Observation) bool) observation.Observation {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case o := <-h.out:
			if keep(o) {
				return o
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func isLive(ch int64, title string, asString bool) any {
	inner := map[string]any{"livestream": map[string]any{"id": 1, "channel_id": ch, "session_title": title, "created_at": "2026-12-06T10:00:00Z"}}
	if !asString {
		return map[string]any{"event": realtime.EventStreamerIsLive, "data": inner}
	}
	return map[string]any{"event": realtime.EventStreamerIsLive, "data": mustJSON(inner)}
}

// TestRealServer runs the provider against a real Centrifugo server: two
// connections (two channels each at most), both data forms, unknown
// events ignored, the Origin header accepted, and the connection token
// renewed (a 3 s ttl) without a reconnect and without losing a publication.
func TestRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Centrifugo server")
	}
	srv := centrifugotest.Start(t, centrifugotest.Options{})
	h := start(t, srv, config{perSocket: 2, ttl: 3 * time.Second})
	users := map[int64]int64{101: 1, 102: 2, 103: 3}
	for ch, uid := range users {
		h.c.Subscribe(ch, uid)
	}
	h.subscribed(t, 101, 102, 103)
	if n := len(h.c.Sockets()); n != 2 {
		t.Fatalf("%d sockets; want 2 (2 channels per socket)", n)
	}
	for i, ch := range []int64{101, 102, 103} {
		if err := srv.Publish(realtime.ChannelName(ch), map[string]any{"event": `App\Events\FollowersUpdated`, "data": "{}"}); err != nil {
			t.Fatal(err)
		}
		title := fmt.Sprintf("title %d", ch)
		if err := srv.Publish(realtime.ChannelName(ch), isLive(ch, title, i%2 == 0)); err != nil {
			t.Fatal(err)
		}
		o := h.next(t, "the go-live of "+title, func(o observation.Observation) bool { return o.Kind == observation.Status })
		if o.UserID != users[ch] || o.Title != title || o.Live != observation.Live || o.Source != kickmonv1.Source_SOURCE_CENTRIFUGO {
			t.Errorf("observation %+v; want user %d live %q from Centrifugo", o, users[ch], title)
		}
	}
	if st := h.c.Stats(); st.Ignored != 3 || st.Observations != 3 {
		t.Errorf("stats %+v; want 3 ignored, 3 observations", st)
	}

	// Renewal: the server refreshes at the ttl; wait for three more tokens.
	before := h.tokens.Load()
	testwait.For(t, waitTimeout, "three token renewals", func() bool { return h.tokens.Load() >= before+3 })
	if err := srv.Publish(realtime.ChannelName(101), isLive(101, "after renewals", false)); err != nil {
		t.Fatal(err)
	}
	o := h.next(t, "a go-live after the renewals", func(o observation.Observation) bool { return o.Kind == observation.Status })
	if o.Title != "after renewals" {
		t.Errorf("title %q after renewals", o.Title)
	}
	for _, s := range h.c.Sockets() {
		if s.State != realtime.StateConnected || s.Reconnects != 0 {
			t.Errorf("socket %+v: want connected, never reconnected (renewal is in-band)", s)
		}
	}
}

// TestReconnectReconciles: a disconnect with a reconnect code (4000–4499)
// makes the client reconnect and resubscribe; its streamers are reported
// blind, then seeing, and reconciled through the Checker.
func TestReconnectReconciles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Centrifugo server")
	}
	srv := centrifugotest.Start(t, centrifugotest.Options{})
	h := start(t, srv, config{})
	h.c.Subscribe(201, 21)
	h.c.Subscribe(202, 22)
	h.subscribed(t, 201, 202)
	if err := srv.Disconnect("kickmon-test", 4000, "please reconnect"); err != nil {
		t.Fatal(err)
	}
	blind := h.next(t, "blind coverage", func(o observation.Observation) bool { return o.Kind == observation.Coverage && o.Blind })
	if blind.Reason != "centrifugo socket down" || len(blind.UserIDs) != 2 {
		t.Errorf("blind coverage %+v", blind)
	}
	seeing := h.next(t, "seeing coverage", func(o observation.Observation) bool { return o.Kind == observation.Coverage && !o.Blind })
	if slices.Sorted(slices.Values(seeing.UserIDs))[0] != 21 || len(seeing.UserIDs) != 2 {
		t.Errorf("seeing coverage %+v", seeing)
	}
	testwait.For(t, waitTimeout, "a reconcile of both streamers", func() bool {
		return slices.ContainsFunc(h.check.all(), func(ids []int64) bool { return slices.Equal(ids, []int64{21, 22}) })
	})
	h.subscribed(t, 201, 202)
	if st := h.c.Stats(); st.Reconnects != 1 {
		t.Errorf("%d reconnects; want 1", st.Reconnects)
	}
}

// TestRefusals: a terminal disconnect code or a refused token ends Run with
// a RefusedError (the realtime Manager renegotiates), and the streamers are
// reported blind with the reason.
func TestRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Centrifugo server")
	}
	srv := centrifugotest.Start(t, centrifugotest.Options{})
	t.Run("terminal code", func(t *testing.T) {
		h := start(t, srv, config{})
		h.c.Subscribe(301, 31)
		h.subscribed(t, 301)
		if err := srv.Disconnect("kickmon-test", 4501, "go away"); err != nil {
			t.Fatal(err)
		}
		err := waitRun(t, h)
		var re *realtime.RefusedError
		if !errors.As(err, &re) || re.Code != 4501 || re.Provider != realtime.Centrifugo {
			t.Fatalf("Run = %v; want a refusal with code 4501", err)
		}
		o := h.next(t, "blind coverage", func(o observation.Observation) bool { return o.Kind == observation.Coverage && o.Blind })
		if o.Reason != "centrifugo stopped by code 4501: go away" {
			t.Errorf("reason %q", o.Reason)
		}
	})
	t.Run("token refused", func(t *testing.T) {
		var refuse atomic.Bool
		refuse.Store(true)
		h := start(t, srv, config{refuse: &refuse})
		h.c.Subscribe(302, 32)
		err := waitRun(t, h)
		var re *realtime.RefusedError
		if !errors.As(err, &re) || re.Reason != "token refused: token: 403 Forbidden" {
			t.Fatalf("Run = %v; want a refused token", err)
		}
	})
	t.Run("origin refused", func(t *testing.T) {
		h := start(t, srv, config{origin: "chrome-extension://abc"})
		h.c.Subscribe(303, 33)
		o := h.next(t, "blind coverage", func(o observation.Observation) bool { return o.Kind == observation.Coverage && o.Blind })
		if o.Reason != "centrifugo socket down" {
			t.Errorf("reason %q", o.Reason)
		}
		if s := h.c.Sockets(); len(s) != 1 || s[0].State == realtime.StateConnected || s[0].LastError == "" {
			t.Errorf("sockets %+v; want one not connected, with the error", s)
		}
	})
}

func waitRun(t *testing.T, h *harness) error {
	t.Helper()
	select {
	case err := <-h.runErr:
		h.runErr <- err // for Cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not end")
		return nil
	}
}
