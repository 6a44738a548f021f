package realtime_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/centrifugo"
	"github.com/kickmon/kickmon/collector/internal/centrifugo/centrifugotest"
	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/pusher"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	"github.com/kickmon/kickmon/collector/kicksim"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

const waitTimeout = time.Minute

// webKick stands in for web.kick.com: its negotiation answer and token
// endpoint are switched by the test.
type webKick struct {
	srv       *httptest.Server
	offer     atomic.Value // string: "pusher", "centrifugo", "both", "blocked", "404"
	tokens    atomic.Bool  // tokens are refused while false
	centURL   string
	pusherKey string
	mint      func() string
}

func newWebKick(t testing.TB, centURL, pusherKey string, mint func() string) *webKick {
	w := &webKick{centURL: centURL, pusherKey: pusherKey, mint: mint}
	w.offer.Store("both")
	w.tokens.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/realtime/connection", func(rw http.ResponseWriter, r *http.Request) {
		cent := fmt.Sprintf(`{"provider":"centrifugo","credentials":{"url":%q}}`, w.centURL)
		push := fmt.Sprintf(`{"provider":"pusher","credentials":{"app_key":%q,"cluster":"us2"}}`, w.pusherKey)
		var conns []string
		switch w.offer.Load().(string) {
		case "blocked":
			rw.Header().Set("cf-ray", "1")
			rw.Header().Set("Content-Type", "text/html")
			rw.WriteHeader(http.StatusForbidden)
			_, _ = rw.Write([]byte("<!DOCTYPE html><title>Attention Required! | Cloudflare</title>"))
			return
		case "404":
			http.NotFound(rw, r)
			return
		case "pusher":
			conns = []string{push}
		case "centrifugo":
			conns = []string{cent}
		default:
			conns = []string{cent, push}
		}
		rw.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(rw, `{"data":{"connections":[%s],"mode":"websocket"}}`, strings.Join(conns, ","))
	})
	mux.HandleFunc("POST /api/v1/realtime/auth/connection", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		if !w.tokens.Load() {
			rw.WriteHeader(http.StatusForbidden)
			_, _ = rw.Write([]byte(`{"message":"Forbidden"}`))
			return
		}
		_, _ = fmt.Fprintf(rw, `{"data":{"token":%q},"message":"success"}`, w.mint())
	})
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	return w
}

type checker struct {
	mu  sync.Mutex
	ids []int64
}

func (c *checker) CheckNow(ids ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, ids...)
}

func (c *checker) checked(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.ids, id)
}

func (c *checker) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = nil
}

// env is a Manager wired to kicksim's Pusher, a real Centrifugo server and
// a stand-in web.kick.com.
type env struct {
	sim   *kicksim.Sim
	cent  *centrifugotest.Server
	web   *webKick
	m     *realtime.Manager
	out   chan observation.Observation
	check *checker
}

type setup struct {
	noNegotiation bool   // no KICK_WEB_URL
	webURL        string // overrides the stand-in's URL
	pusherURL     string // overrides sim.PusherURL(); "-" for none
	centURL       string // KICK_CENTRIFUGO_URL
	offer         string
	tokens        *bool
	secure        bool // KICKMON_ALLOW_INSECURE unset: negotiated ws:// URLs refused
	// wrap, if set, wraps every provider the Manager builds.
	wrap func(realtime.Provider) realtime.Provider
}

func newEnv(t testing.TB, sim *kicksim.Sim, cent *centrifugotest.Server, s setup) *env {
	t.Helper()
	u, err := url.Parse(sim.PusherURL())
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(u.Path, "/app/")
	e := &env{sim: sim, cent: cent, out: make(chan observation.Observation, 4096), check: &checker{}}
	e.web = newWebKick(t, cent.URL, key, func() string { return cent.Token("kickmon", time.Hour) })
	if s.offer != "" {
		e.web.offer.Store(s.offer)
	}
	if s.tokens != nil {
		e.web.tokens.Store(*s.tokens)
	}
	var neg *realtime.Negotiator
	if !s.noNegotiation {
		neg = &realtime.Negotiator{WebURL: e.web.srv.URL, Origin: realtime.DefaultOrigin}
		if s.webURL != "" {
			neg.WebURL = s.webURL
		}
	}
	pusherURL := sim.PusherURL()
	switch s.pusherURL {
	case "-":
		pusherURL = ""
	case "":
	default:
		pusherURL = s.pusherURL
	}
	log := logtest.New(t)
	wrap := func(p realtime.Provider, err error) (realtime.Provider, error) {
		if err != nil || s.wrap == nil {
			return p, err
		}
		return s.wrap(p), nil
	}
	e.m, err = realtime.NewManager(realtime.Options{
		Negotiator: neg, PusherURL: pusherURL, CentrifugoURL: s.centURL, AllowInsecure: !s.secure, Out: e.out, Logger: log,
		RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, Recheck: 300 * time.Millisecond,
		New: map[string]realtime.Factory{
			realtime.Pusher: func(s realtime.Start) (realtime.Provider, error) {
				return wrap(pusher.New(pusher.Options{URL: s.Offer.URL, Out: e.out, Checker: e.check, Logger: log, Counters: s.Counters,
					Reconcile: s.Reconcile, Note: s.Note, EndOnStop: true, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}))
			},
			realtime.Centrifugo: func(s realtime.Start) (realtime.Provider, error) {
				return wrap(centrifugo.New(centrifugo.Options{URL: s.Offer.URL, Token: s.Token, Origin: realtime.DefaultOrigin, Out: e.out,
					Checker: e.check, Logger: log, Counters: s.Counters, Reconcile: s.Reconcile, Note: s.Note,
					MinReconnect: 20 * time.Millisecond, MaxReconnect: 200 * time.Millisecond}))
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// status waits until the Manager's status satisfies ok.
func (e *env) status(t testing.TB, what string, ok func(realtime.Status) bool) realtime.Status {
	t.Helper()
	var st realtime.Status
	testwait.For(t, waitTimeout, what, func() bool { st = e.m.Status(); return ok(st) })
	return st
}

// next returns the next observation matching keep.
func (e *env) next(t *testing.T, what string, keep func(observation.Observation) bool) observation.Observation {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case o := <-e.out:
			if keep(o) {
				return o
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func liveFrom(src kickmonv1.Source, user int64) func(observation.Observation) bool {
	return func(o observation.Observation) bool {
		return o.Kind == observation.Status && o.Source == src && o.UserID == user && o.Live == observation.Live
	}
}

func using(provider string, negotiated bool, channels int) func(realtime.Status) bool {
	return func(st realtime.Status) bool {
		return st.Provider == provider && st.Negotiated == negotiated && st.Channels == channels && st.Health == realtime.HealthOK
	}
}

// TestSwitch: Pusher in use; Kick retires it (4001 on the socket, no longer
// offered) and offers Centrifugo: the Manager renegotiates, takes
// Centrifugo, resubscribes every channel, reconciles every streamer through
// the Checker, and the next go-live arrives through Centrifugo.
func TestSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kicksim and a Centrifugo server")
	}
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	cent := centrifugotest.Start(t, centrifugotest.Options{})
	e := newEnv(t, sim, cent, setup{offer: "pusher"})
	ss := sim.Streamers()
	for _, s := range ss {
		e.m.Subscribe(s.ChannelID, s.UserID)
	}
	e.status(t, "Pusher in use with both channels", using(realtime.Pusher, true, 2))
	if err := sim.GoLive(ss[0].UserID); err != nil {
		t.Fatal(err)
	}
	e.next(t, "the go-live through Pusher", liveFrom(kickmonv1.Source_SOURCE_PUSHER, ss[0].UserID))

	e.check.reset()
	e.web.offer.Store("centrifugo")
	sim.CloseSockets(4001, "App key not in this cluster")
	refused := e.next(t, "the refusal reported", func(o observation.Observation) bool {
		return o.Kind == observation.Coverage && o.Blind && strings.HasPrefix(o.Reason, "provider refused")
	})
	if refused.Reason != "provider refused: pusher 4001 App key not in this cluster" || len(refused.UserIDs) != 0 {
		t.Errorf("refusal coverage %+v; want every streamer, provider refused: pusher 4001 …", refused)
	}
	st := e.status(t, "Centrifugo in use with both channels", using(realtime.Centrifugo, true, 2))
	if st.Stats.Refusals != 1 || st.Stats.Switches != 2 || st.TokenExpiresAt.IsZero() {
		t.Errorf("stats %+v, token expiry %v; want 1 refusal, 2 providers started, a token expiry", st.Stats, st.TokenExpiresAt)
	}
	for _, s := range ss {
		testwait.For(t, waitTimeout, "a reconcile of every streamer", func() bool { return e.check.checked(s.UserID) })
		testwait.For(t, waitTimeout, "a Centrifugo subscriber", func() bool {
			n, err := cent.Subscribers(realtime.ChannelName(s.ChannelID))
			return err == nil && n == 1
		})
	}
	if err := cent.Publish(realtime.ChannelName(ss[1].ChannelID), map[string]any{"event": realtime.EventStreamerIsLive,
		"data": map[string]any{"livestream": map[string]any{"id": 9, "channel_id": ss[1].ChannelID, "session_title": "on centrifugo", "created_at": "2026-12-06T10:00:00Z"}}}); err != nil {
		t.Fatal(err)
	}
	o := e.next(t, "the go-live through Centrifugo", liveFrom(kickmonv1.Source_SOURCE_CENTRIFUGO, ss[1].UserID))
	if o.Title != "on centrifugo" {
		t.Errorf("title %q", o.Title)
	}
}

// TestFallback: when negotiation fails (Cloudflare 403, 404, network), the
// configured URLs are used; a fallback gives way to negotiation once it
// works again; with nothing working the feed is down, with the reasons.
func TestFallback(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kicksim and a Centrifugo server")
	}
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	cent := centrifugotest.Start(t, centrifugotest.Options{})
	s := sim.Streamers()[0]
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	no := false
	tests := []struct {
		name  string
		setup setup
		want  func(realtime.Status) bool
		err   string // LastNegotiationError prefix
	}{
		{"403 page: the Centrifugo fallback", setup{offer: "blocked", centURL: cent.URL}, using(realtime.Centrifugo, false, 1), "negotiation: 403 blocked"},
		{"404: the Pusher fallback", setup{offer: "404"}, using(realtime.Pusher, false, 1), "negotiation: 404"},
		{"network: the Pusher fallback", setup{webURL: closed.URL}, using(realtime.Pusher, false, 1), "negotiation: dial tcp"},
		// Centrifugo needs a token from KICK_WEB_URL: refused, then Pusher.
		{"no KICK_WEB_URL: the fallbacks only", setup{noNegotiation: true, centURL: cent.URL}, using(realtime.Pusher, false, 1), ""},
		// kicksim's and the test server's ws:// URLs are refused when negotiated
		// without KICKMON_ALLOW_INSECURE (configured ones were checked at start).
		{"insecure negotiated URLs refused", setup{secure: true}, using(realtime.Pusher, false, 1), "negotiation: negotiated centrifugo URL ws://"},
		{"nothing works", setup{offer: "blocked", tokens: &no, centURL: cent.URL, pusherURL: strings.Replace(closed.URL, "http", "ws", 1) + "/app/k?protocol=7"},
			func(st realtime.Status) bool {
				return st.Health == realtime.HealthDown && st.Provider == "" && st.Running == realtime.Pusher &&
					strings.HasPrefix(st.BlindReason, "negotiation: 403 blocked; pusher fallback: socket down")
			}, "negotiation: 403 blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sim, cent, tt.setup)
			e.m.Subscribe(s.ChannelID, s.UserID)
			st := e.status(t, tt.name, tt.want)
			if !strings.HasPrefix(st.LastNegotiationError, tt.err) {
				t.Errorf("last negotiation error %q; want %q…", st.LastNegotiationError, tt.err)
			}
			if tt.err != "" {
				o := e.next(t, "blind coverage with the negotiation's reason", func(o observation.Observation) bool { return o.Kind == observation.Coverage && o.Blind })
				if !strings.HasPrefix(o.Reason, tt.err) {
					t.Errorf("coverage reason %q; want %q…", o.Reason, tt.err)
				}
			}
		})
	}
	t.Run("negotiation works again", func(t *testing.T) {
		e := newEnv(t, sim, cent, setup{offer: "404"})
		e.m.Subscribe(s.ChannelID, s.UserID)
		e.status(t, "the Pusher fallback", using(realtime.Pusher, false, 1))
		e.web.offer.Store("centrifugo")
		e.status(t, "negotiated Centrifugo", using(realtime.Centrifugo, true, 1))
	})
}

// gated holds its provider's Subscribe and Unsubscribe until open closes.
type gated struct {
	realtime.Provider
	open <-chan struct{}
}

func (g gated) Subscribe(channelID, userID int64) {
	<-g.open
	g.Provider.Subscribe(channelID, userID)
}

func (g gated) Unsubscribe(channelID int64) {
	<-g.open
	g.Provider.Unsubscribe(channelID)
}

// TestSubscribeDoesNotWait: Subscribe and Unsubscribe return while the
// provider is busy (the engine's restore at a cold start calls them for
// every streamer), and the provider ends up with the last of each
// channel's changes, in order.
func TestSubscribeDoesNotWait(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kicksim and a Centrifugo server")
	}
	sim := kicksim.Start(t, kicksim.WithStreamers(3))
	cent := centrifugotest.Start(t, centrifugotest.Options{})
	open := make(chan struct{})
	e := newEnv(t, sim, cent, setup{offer: "pusher", wrap: func(p realtime.Provider) realtime.Provider { return gated{p, open} }})
	e.status(t, "Pusher in use", using(realtime.Pusher, true, 0))
	ss := sim.Streamers()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		e.m.Subscribe(ss[0].ChannelID, ss[0].UserID)
		e.m.Unsubscribe(ss[0].ChannelID)
		e.m.Subscribe(ss[1].ChannelID, ss[2].UserID)
		e.m.Subscribe(ss[1].ChannelID, ss[1].UserID) // the user id changes
		e.m.Subscribe(ss[2].ChannelID, ss[2].UserID)
	}()
	select {
	case <-returned:
	case <-time.After(waitTimeout):
		t.Fatal("Subscribe waited for the provider")
	}
	if got, want := e.m.Subscribed(), map[int64]int64{ss[1].ChannelID: ss[1].UserID, ss[2].ChannelID: ss[2].UserID}; !maps.Equal(got, want) {
		t.Errorf("Subscribed() = %v; want %v", got, want)
	}
	close(open)
	e.status(t, "Pusher with both remaining channels", using(realtime.Pusher, true, 2))
	if n := sim.Subscriptions(realtime.ChannelName(ss[0].ChannelID)); n != 0 {
		t.Errorf("the unsubscribed channel has %d subscriptions", n)
	}
	if err := sim.GoLive(ss[1].UserID); err != nil {
		t.Fatal(err)
	}
	e.next(t, "the go-live with the last user id", liveFrom(kickmonv1.Source_SOURCE_PUSHER, ss[1].UserID))
}
