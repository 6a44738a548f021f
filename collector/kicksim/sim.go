// Package kicksim is a byte-faithful simulator of the parts of Kick.com that
// kickmon uses, for tests, benchmarks and the demo.
//
// It owns: the OAuth client-credentials token endpoint of id.kick.com, the
// official REST endpoints of api.kick.com (/public/v1/channels, livestreams,
// users/livestreams, public-key, events/subscriptions), a Pusher protocol-7
// WebSocket server like Kick's old realtime feed, a Centrifugo server (built
// on github.com/centrifugal/centrifuge) like its new one, the realtime
// provider negotiation and token endpoints of web.kick.com, signed webhook deliveries, a
// deterministic seeded world of streamers with an optional automatic
// scenario and a ground-truth log of every transition, and fault injection
// through the Go API and a loopback HTTP JSON control API. Payloads follow
// shared/kick-api.md to the byte; where the document is silent the choice is
// noted in the code.
//
// One listener serves everything on different paths:
//
//	/oauth/token        (KICK_AUTH_URL)
//	/public/v1/...      (KICK_API_URL)
//	/app/{key}          (KICK_PUSHER_URL)
//	/connection/websocket (KICK_CENTRIFUGO_URL)
//	/api/v1/realtime/... (KICK_WEB_URL: provider negotiation, realtime tokens)
//	/control/...        (KICKSIM_CONTROL_URL)
package kicksim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Log attribute keys.
const (
	logComponent = "component"
	logEndpoint  = "endpoint"
	logFault     = "fault"
	logSocket    = "socket_id"
	logChannel   = "channel"
	logErr       = "err"
	logURL       = "url"
	logStatus    = "status"
	logCode      = "code"
)

// DefaultAppKey is Kick's Pusher app key (kick-api.md §2.1).
const DefaultAppKey = "32cbd69e4b950bf97679"

type options struct {
	streamers        int
	seed             int64
	clientID         string
	clientSecret     string
	tokenTTL         time.Duration
	activityTimeout  time.Duration
	pongTimeout      time.Duration
	idleClose        time.Duration
	appKey           string
	eventRate        float64
	liveFraction     float64
	webhookURL       string
	webhookDup       float64
	webhookDelay     time.Duration
	logger           *slog.Logger
	key              *rsa.PrivateKey
	truthMax         int
	now              func() time.Time
	socketBuffer     int
	webhookQueue     int
	webhookRetryBase time.Duration
	realtime         Realtime
	rtTokenTTL       time.Duration
	cfPing, cfPong   time.Duration
}

// Option configures a Sim.
type Option func(*options)

// WithStreamers sets the number of streamers in the world (default 50).
func WithStreamers(n int) Option { return func(o *options) { o.streamers = n } }

// WithSeed sets the seed of the world and the scenario (default 1).
func WithSeed(seed int64) Option { return func(o *options) { o.seed = seed } }

// WithCredentials sets the OAuth client id and secret the sim accepts
// (default: derived from the seed).
func WithCredentials(id, secret string) Option {
	return func(o *options) { o.clientID, o.clientSecret = id, secret }
}

// WithTokenTTL sets how long an app token lives (default 60 days, as kicksdk
// reports). expires_in is the TTL in whole seconds, rounded up, at least 1.
func WithTokenTTL(d time.Duration) Option { return func(o *options) { o.tokenTTL = d } }

// WithActivityTimeout sets the Pusher activity timeout (default 120 s, Kick's
// value). connection_established advertises it in whole seconds (rounded up,
// at least 1); the server pings a client after exactly this much silence
// from it, so tests can use sub-second values.
func WithActivityTimeout(d time.Duration) Option { return func(o *options) { o.activityTimeout = d } }

// WithPongTimeout sets how long the server waits for any message after its
// pusher:ping before closing with 4201 (default 30 s).
func WithPongTimeout(d time.Duration) Option { return func(o *options) { o.pongTimeout = d } }

// WithIdleClose closes a socket with 4202 after it has had no subscription
// for d (default 0: never).
func WithIdleClose(d time.Duration) Option { return func(o *options) { o.idleClose = d } }

// WithAppKey sets the Pusher app key the sim accepts (default DefaultAppKey).
func WithAppKey(key string) Option { return func(o *options) { o.appKey = key } }

// WithEventRate starts the automatic scenario: perSecond random changes per
// second (go live, go offline, viewers, title, category, noise, rarely a
// rename). 0, the default, means no automatic scenario.
func WithEventRate(perSecond float64) Option { return func(o *options) { o.eventRate = perSecond } }

// WithLiveFraction makes about this fraction of streamers live when the
// world is created (default 0: everyone offline).
func WithLiveFraction(p float64) Option { return func(o *options) { o.liveFraction = p } }

// WithWebhookURL sets where webhooks are delivered, like the per-app webhook
// URL of Kick's developer settings (default none: no deliveries).
func WithWebhookURL(url string) Option { return func(o *options) { o.webhookURL = url } }

// WithWebhookDuplicates delivers each webhook a second time (same message id
// and signature) with probability p.
func WithWebhookDuplicates(p float64) Option { return func(o *options) { o.webhookDup = p } }

// WithWebhookDelay delays each delivery by a random duration in [0, d], so
// deliveries can also arrive out of order.
func WithWebhookDelay(d time.Duration) Option { return func(o *options) { o.webhookDelay = d } }

// WithLogger sets the logger (default: discard). Secrets are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithKey sets the RSA key that signs webhooks (default: a 2048-bit key
// generated once per process).
func WithKey(k *rsa.PrivateKey) Option { return func(o *options) { o.key = k } }

// WithTruthLimit bounds the ground-truth log (default 1<<20 transitions; when
// full the older half is dropped).
func WithTruthLimit(n int) Option { return func(o *options) { o.truthMax = n } }

// WithClock sets the clock (default time.Now). Timers still run on real time.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

var processKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// Sim is a running simulator. Create it with New (then Serve and Close) or
// Start in tests.
type Sim struct {
	o      options
	log    *slog.Logger
	world  *world
	tokens *tokens
	faults *faults
	hub    *hub
	hooks  *webhooks
	rt     *realtime
	cf     *cfServer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	noiseN atomic.Int64

	// rate is the scenario's changes per second (float64 bits); the
	// scenario goroutine starts with the first positive rate.
	rate     atomic.Uint64
	scenario sync.Once

	mu     sync.Mutex
	srv    *http.Server
	base   string // http://host:port
	closed bool
}

// New builds a simulator. Its background work (scenario, webhooks) starts
// now; call Close to stop it.
func New(opts ...Option) (*Sim, error) {
	o := options{
		streamers:        50,
		seed:             1,
		tokenTTL:         60 * 24 * time.Hour,
		activityTimeout:  120 * time.Second,
		pongTimeout:      30 * time.Second,
		appKey:           DefaultAppKey,
		truthMax:         1 << 20,
		now:              time.Now,
		socketBuffer:     4096,
		webhookQueue:     100_000,
		webhookRetryBase: 200 * time.Millisecond,
		rtTokenTTL:       DefaultRealtimeTokenTTL,
	}
	for _, opt := range opts {
		opt(&o)
	}
	var problems []string
	if o.streamers < 1 || o.streamers > 10_000_000 {
		problems = append(problems, fmt.Sprintf("streamers must be 1..10000000, got %d", o.streamers))
	}
	if o.tokenTTL <= 0 || o.activityTimeout <= 0 || o.pongTimeout <= 0 {
		problems = append(problems, "token TTL, activity timeout and pong timeout must be positive")
	}
	if o.eventRate < 0 || math.IsNaN(o.eventRate) || math.IsInf(o.eventRate, 0) {
		problems = append(problems, fmt.Sprintf("event rate must be >= 0, got %v", o.eventRate))
	}
	if o.webhookDup < 0 || o.webhookDup > 1 || o.liveFraction < 0 || o.liveFraction > 1 {
		problems = append(problems, "webhook duplicate probability and live fraction must be in [0,1]")
	}
	if o.appKey == "" {
		problems = append(problems, "app key must not be empty")
	}
	if _, ok := realtimeNames[o.realtime]; !ok {
		problems = append(problems, "realtime must be one of RealtimeBoth, RealtimePusher, RealtimeCentrifugo, RealtimeNone")
	}
	if o.rtTokenTTL <= 0 || o.cfPing < 0 {
		problems = append(problems, "realtime token TTL must be positive and the Centrifugo ping interval >= 0 (0: 25 s)")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("kicksim: invalid options: %s", strings.Join(problems, "; "))
	}
	if o.clientID == "" || o.clientSecret == "" {
		r := mrand.New(mrand.NewPCG(uint64(o.seed), 0x636c69656e74))
		if o.clientID == "" {
			o.clientID = ulidFrom(time.Date(2025, 3, 25, 0, 0, 0, 0, time.UTC), r)
		}
		if o.clientSecret == "" {
			o.clientSecret = fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
		}
	}
	if o.key == nil {
		k, err := processKey()
		if err != nil {
			return nil, fmt.Errorf("kicksim: generate RSA key: %w", err)
		}
		o.key = k
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{o: o, log: log.With(logComponent, "kicksim"), ctx: ctx, cancel: cancel}
	s.world = newWorld(o.streamers, o.seed, o.liveFraction, o.truthMax, o.now)
	s.tokens = newTokens(o.tokenTTL, o.now)
	s.faults = newFaults()
	s.hub = newHub(s)
	s.rt = newRealtime(&o)
	cf, err := newCFServer(s)
	if err != nil {
		cancel()
		return nil, err
	}
	s.cf = cf
	s.hooks = newWebhooks(s)
	s.world.emit = s.emit
	s.hooks.start()
	s.SetEventRate(o.eventRate)
	return s, nil
}

// Start starts a simulator on 127.0.0.1:0 for a test and closes it in
// t.Cleanup. It fails the test on error.
func Start(t testing.TB, opts ...Option) *Sim {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("kicksim.Start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close()
		t.Fatalf("kicksim.Start: listen: %v", err)
	}
	srv, err := s.attach(ln)
	if err != nil {
		_ = ln.Close()
		_ = s.Close()
		t.Fatalf("kicksim.Start: %v", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve failed", logErr, err)
		}
	}()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("kicksim: close: %v", err)
		}
	})
	return s
}

func (s *Sim) attach(ln net.Listener) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("kicksim: closed")
	}
	if s.srv != nil {
		return nil, errors.New("kicksim: already serving")
	}
	s.base = "http://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s.srv, nil
}

// Serve serves on ln until Close. It returns nil after Close.
func (s *Sim) Serve(ln net.Listener) error {
	srv, err := s.attach(ln)
	if err != nil {
		return err
	}
	s.log.Info("serving", logURL, s.base)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kicksim: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Close stops everything: the listener, all sockets, webhook deliveries and
// the scenario, and waits for every goroutine to end.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	s.cancel()
	var err error
	if srv != nil {
		// Requests still in flight after the grace (a client that closed
		// first, a slow fault) are cut: the simulated Kick just goes away.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if e := srv.Shutdown(ctx); errors.Is(e, context.DeadlineExceeded) {
			s.log.Warn("requests still in flight at close; closing their connections")
			_ = srv.Close()
		} else if e != nil {
			err = fmt.Errorf("kicksim: shutdown: %w", e)
		}
		cancel()
	}
	s.hub.closeAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if e := s.cf.shutdown(ctx); e != nil && err == nil {
		err = e
	}
	cancel()
	s.hooks.stop()
	s.wg.Wait()
	return err
}

func (s *Sim) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", Description: "method not allowed", Message: "method not allowed"})
	})
	mux.HandleFunc("GET /public/v1/channels", s.api(EndpointChannels, s.handleChannels))
	mux.HandleFunc("GET /public/v1/livestreams", s.api(EndpointLivestreams, s.handleLivestreams))
	mux.HandleFunc("GET /public/v1/users/livestreams", s.api(EndpointUsersLivestreams, s.handleUsersLivestreams))
	mux.HandleFunc("GET /public/v1/public-key", s.api(EndpointPublicKey, s.handlePublicKey))
	mux.HandleFunc("GET /public/v1/events/subscriptions", s.api(EndpointSubscriptions, s.handleListSubscriptions))
	mux.HandleFunc("POST /public/v1/events/subscriptions", s.api(EndpointSubscriptions, s.handleCreateSubscriptions))
	mux.HandleFunc("DELETE /public/v1/events/subscriptions", s.api(EndpointSubscriptions, s.handleDeleteSubscriptions))
	mux.HandleFunc("/public/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, envelope{Data: struct{}{}, Message: "Not Found"})
	})
	notServed := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, webError{"realtime provider not served (kicksim --realtime " + s.o.realtime.String() + ")"})
	}
	if s.o.realtime.pusher() {
		mux.HandleFunc("GET /app/{key}", s.handlePusher)
	} else {
		mux.HandleFunc("/app/", notServed)
	}
	if s.o.realtime.centrifugo() {
		mux.HandleFunc(centrifugoPath, s.handleCentrifugo)
	} else {
		mux.HandleFunc(centrifugoPath, notServed)
	}
	mux.HandleFunc("POST /api/v1/realtime/connection", s.handleNegotiation)
	mux.HandleFunc("POST /api/v1/realtime/auth/connection", s.handleRealtimeToken)
	s.controlRoutes(mux)
	return mux
}

// AuthURL is the base of the OAuth server (KICK_AUTH_URL).
func (s *Sim) AuthURL() string { return s.baseURL() }

// APIURL is the base of the public API (KICK_API_URL).
func (s *Sim) APIURL() string { return s.baseURL() }

// PusherURL is the WebSocket URL with Kick's query string (KICK_PUSHER_URL).
func (s *Sim) PusherURL() string {
	b := s.baseURL()
	if b == "" {
		return ""
	}
	return "ws" + strings.TrimPrefix(b, "http") + "/app/" + s.o.appKey + "?protocol=7&client=js&version=8.4.0&flash=false"
}

// ControlURL is the base of the loopback control API (KICKSIM_CONTROL_URL).
func (s *Sim) ControlURL() string {
	b := s.baseURL()
	if b == "" {
		return ""
	}
	return b + "/control"
}

func (s *Sim) baseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// ClientID is the OAuth client id the sim accepts.
func (s *Sim) ClientID() string { return s.o.clientID }

// ClientSecret is the OAuth client secret the sim accepts.
func (s *Sim) ClientSecret() string { return s.o.clientSecret }

// maxEnvValue keeps KICKMON_STREAMERS under Linux's limit for one
// environment string (MAX_ARG_STRLEN, 128 KiB).
const maxEnvValue = 128<<10 - 64

// Env returns the environment lines kickcollector needs to use this sim.
// KICKMON_STREAMERS (all slugs, comma-separated) is left out when it would
// not fit in one environment variable.
func (s *Sim) Env() []string {
	env := []string{
		"KICK_AUTH_URL=" + s.AuthURL(),
		"KICK_API_URL=" + s.APIURL(),
		"KICK_PUSHER_URL=" + s.PusherURL(),
		"KICK_WEB_URL=" + s.WebURL(),
		"KICK_CENTRIFUGO_URL=" + s.CentrifugoURL(),
		"KICK_CLIENT_ID=" + s.o.clientID,
		"KICK_CLIENT_SECRET=" + s.o.clientSecret,
		"KICKMON_ALLOW_INSECURE=true",
		"KICKSIM_CONTROL_URL=" + s.ControlURL(),
	}
	var b strings.Builder
	for i, st := range s.Streamers() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(st.Slug)
		if b.Len() > maxEnvValue {
			return env
		}
	}
	return append(env, "KICKMON_STREAMERS="+b.String())
}

// Streamers returns a snapshot of every streamer, in world order.
func (s *Sim) Streamers() []Streamer { return s.world.snapshot() }

// Streamer returns one streamer by user id.
func (s *Sim) Streamer(userID int64) (Streamer, bool) { return s.world.get(userID) }

// StreamerBySlug returns one streamer by its current slug.
func (s *Sim) StreamerBySlug(slug string) (Streamer, bool) {
	s.world.mu.RLock()
	defer s.world.mu.RUnlock()
	st, ok := s.world.bySlug[slug]
	if !ok {
		return Streamer{}, false
	}
	return st.Streamer, true
}

// GoLive starts a new session now: StreamerIsLive on channel.{channel_id}
// and livestream.status.updated to webhook subscribers.
func (s *Sim) GoLive(userID int64) error {
	return s.world.update(userID, s.world.goLive)
}

// GoOffline ends the session now: StopStreamBroadcast and a webhook with
// ended_at.
func (s *Sim) GoOffline(userID int64) error {
	return s.world.update(userID, s.world.goOffline)
}

// SetTitle changes the title (LivestreamUpdated while live, and
// livestream.metadata.updated to webhook subscribers).
func (s *Sim) SetTitle(userID int64, title string) error {
	return s.world.update(userID, func(st *streamer, now time.Time) error {
		s.world.setTitle(st, title, now)
		return nil
	})
}

// SetCategory changes the category to one of Categories().
func (s *Sim) SetCategory(userID int64, categoryID int64) error {
	c, ok := categoryByID(categoryID)
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownCategory, categoryID)
	}
	return s.world.update(userID, func(st *streamer, now time.Time) error {
		s.world.setCategory(st, c, now)
		return nil
	})
}

// SetViewers changes the viewer count of a live streamer.
func (s *Sim) SetViewers(userID int64, viewers int) error {
	return s.world.update(userID, func(st *streamer, now time.Time) error {
		return s.world.setViewers(st, viewers, now)
	})
}

// Rename changes the slug (1–25 characters of a-z, 0-9, '-' and '_'). The
// old slug becomes unknown to the channels API.
func (s *Sim) Rename(userID int64, newSlug string) error {
	return s.world.update(userID, func(st *streamer, now time.Time) error {
		return s.world.rename(st, newSlug, now)
	})
}

// Ban bans the channel; a live channel goes offline first
// (StopStreamBroadcast with is_banned true). A banned channel cannot go live.
func (s *Sim) Ban(userID int64) error {
	return s.world.update(userID, s.world.ban)
}

// EmitNoise sends one noise event on the streamer's Pusher channel,
// alternating FollowersUpdated and ChannelSubscriptionEvent.
func (s *Sim) EmitNoise(userID int64) error {
	return s.world.update(userID, func(st *streamer, _ time.Time) error {
		s.world.emit(change{kind: changeNoise, s: st.Streamer, noise: int(s.noiseN.Add(1))})
		return nil
	})
}

// Categories lists the categories of the world.
func (s *Sim) Categories() []Category { return append([]Category(nil), categories...) }

// Truth returns the ground truth: every transition so far, in order.
func (s *Sim) Truth() []Transition { return s.world.truthCopy() }

// SetEventRate changes the automatic scenario's rate (changes per second;
// 0 pauses it), as benchmarks do between phases. Negative rates count as 0.
func (s *Sim) SetEventRate(perSecond float64) {
	perSecond = max(perSecond, 0)
	s.rate.Store(math.Float64bits(perSecond))
	if perSecond > 0 {
		s.scenario.Do(func() {
			s.wg.Add(1)
			go s.runScenario()
		})
	}
}

// runScenario performs the event rate's random changes per second until Close.
func (s *Sim) runScenario() {
	defer s.wg.Done()
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	credit := 0.0
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			rate := math.Float64frombits(s.rate.Load())
			credit += rate * now.Sub(last).Seconds()
			last = now
			// Never catch up more than a second, but let rates below one
			// a second build up to their first change.
			credit = min(credit, max(rate, 1))
			if rate == 0 {
				credit = 0
			}
			for ; credit >= 1; credit-- {
				s.world.step()
			}
		}
	}
}

// emit fans one change out to Pusher, Centrifugo and webhook subscribers.
// It runs under the world lock, so events leave in the order of the changes.
func (s *Sim) emit(c change) {
	if ch, event, data, ok := channelEvent(c); ok {
		var raw []byte
		once := func() []byte { // built once, only when someone listens
			if raw == nil {
				raw = marshal(data())
			}
			return raw
		}
		s.hub.publish(ch, event, once)
		s.cf.publish(ch, event, once)
	}
	s.hooks.emit(c)
}
