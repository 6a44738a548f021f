package kickrest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/kicksim"
)

// recorder is a transport that records each request's time, path and
// headers before passing it on.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	at     time.Time
	path   string
	header http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{at: time.Now(), path: req.URL.Path, header: req.Header.Clone()})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) snapshot() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

func newClient(t testing.TB, sim *kicksim.Sim, mod func(*kickrest.Config)) *kickrest.Client {
	t.Helper()
	cfg := kickrest.Config{
		ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		AuthURL: sim.AuthURL(), APIURL: sim.APIURL(), AllowInsecure: true,
		Budget: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := kickrest.New(cfg)
	if err != nil {
		t.Fatalf("kickrest.New: %v", err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func userIDs(ss []kicksim.Streamer) []int64 {
	ids := make([]int64, len(ss))
	for i, s := range ss {
		ids[i] = s.UserID
	}
	return ids
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  kickrest.Config
		want []string
	}{
		{"empty", kickrest.Config{}, []string{"client id is empty", "client secret is empty"}},
		{"http without insecure", kickrest.Config{ClientID: "a", ClientSecret: "b", APIURL: "http://127.0.0.1:1"}, []string{"API URL", "not https", "KICKMON_ALLOW_INSECURE"}},
		{"http auth", kickrest.Config{ClientID: "a", ClientSecret: "b", AuthURL: "http://127.0.0.1:1"}, []string{"auth URL", "not https"}},
		{"ftp", kickrest.Config{ClientID: "a", ClientSecret: "b", APIURL: "ftp://x", AllowInsecure: true}, []string{"scheme must be https"}},
		{"relative", kickrest.Config{ClientID: "a", ClientSecret: "b", APIURL: "/x"}, []string{"not an absolute URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kickrest.New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := kickrest.New(kickrest.Config{ClientID: "a", ClientSecret: "b"}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestChannelsMatchTheWorld(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(60), kicksim.WithLiveFraction(0.5), kicksim.WithSeed(7))
	rec := &recorder{}
	c := newClient(t, sim, func(cfg *kickrest.Config) { cfg.Transport = rec })
	ctx := testContext(t)
	world := sim.Streamers()[:50]
	got, err := c.Channels(ctx, userIDs(world))
	if err != nil {
		t.Fatalf("Channels: %v", err)
	}
	if len(got) != len(world) {
		t.Fatalf("got %d channels, want %d", len(got), len(world))
	}
	byID := map[int64]kickrest.Channel{}
	for _, ch := range got {
		byID[ch.BroadcasterUserID] = ch
	}
	lives := 0
	for _, s := range world {
		ch, ok := byID[s.UserID]
		if !ok {
			t.Fatalf("user %d missing", s.UserID)
		}
		if ch.ServerTime.IsZero() {
			t.Errorf("user %d: no server time", s.UserID)
		}
		want := kickrest.Channel{BroadcasterUserID: s.UserID, Slug: s.Slug, Live: s.Live}
		if s.Live {
			lives++
			want.Title, want.Viewers, want.Language, want.Mature = s.Title, int64(s.Viewers), s.Language, s.Mature
			want.Category = kickrest.Category{ID: s.CategoryID, Name: s.CategoryName}
			want.StartedAt = s.StartedAt
		}
		opts := cmp.Options{
			cmp.FilterPath(func(p cmp.Path) bool {
				n := p.Last().String()
				return n == ".Thumbnail" || n == ".Tags" || n == ".ServerTime"
			}, cmp.Ignore()),
			cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
		}
		if diff := cmp.Diff(want, ch, opts); diff != "" {
			t.Errorf("user %d (-want +got):\n%s", s.UserID, diff)
		}
	}
	if lives == 0 {
		t.Error("no live streamer in the sample; the test proves less than it should")
	}
	// Both the token request and the API request carry kickmon's headers.
	reqs := rec.snapshot()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (token, channels)", len(reqs))
	}
	for _, r := range reqs {
		if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "kickmon/") || !strings.Contains(ua, "+https://github.com/kickmon/kickmon") {
			t.Errorf("%s: User-Agent %q", r.path, ua)
		}
		if a := r.header.Get("Accept"); a != "application/json" {
			t.Errorf("%s: Accept %q", r.path, a)
		}
	}
}

// Answers are read into reused buffers: what one call returned stays as it
// was while later calls reuse its buffer.
func TestResultsOutliveTheirBuffer(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(100), kicksim.WithLiveFraction(0.5), kicksim.WithSeed(3))
	c := newClient(t, sim, nil)
	ctx := testContext(t)
	first, err := c.Channels(ctx, userIDs(sim.Streamers()[:50]))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(first) // every string's bytes, now
	for range 20 {
		if _, err := c.Channels(ctx, userIDs(sim.Streamers()[50:])); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(first); got != want {
		t.Errorf("the first answer changed under later calls:\n%s\nwas\n%s", got, want)
	}
}

func TestTokenIsCachedAndRenewedBeforeExpiry(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3), kicksim.WithTokenTTL(2*time.Second))
	c := newClient(t, sim, nil)
	ctx := testContext(t)
	ids := userIDs(sim.Streamers())
	calls := 0
	call := func() {
		t.Helper()
		calls++
		if _, err := c.Channels(ctx, ids); err != nil {
			t.Fatalf("Channels: %v", err)
		}
	}
	call()
	call()
	if n := sim.Requests(kicksim.EndpointToken); n != 1 {
		t.Fatalf("token requests after two calls = %d, want 1 (cached)", n)
	}
	st := c.TokenStatus()
	if !st.Valid || st.ExpiresAt.IsZero() || st.Renewals != 0 {
		t.Errorf("token status %+v, want valid with an expiry and no renewal", st)
	}
	// Keep calling until the client renews; it must do so before Kick
	// refuses the token: no 401, so exactly one channels request per call.
	deadline := time.Now().Add(10 * time.Second)
	for c.TokenStatus().Renewals == 0 {
		if time.Now().After(deadline) {
			t.Fatal("token never renewed")
		}
		time.Sleep(50 * time.Millisecond)
		call()
	}
	if got := sim.Requests(kicksim.EndpointChannels); got != calls {
		t.Errorf("channels requests = %d for %d calls: a request was retried after a 401", got, calls)
	}
}

func TestUnauthorizedIsRetriedOnceWithANewToken(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(*kicksim.Sim)
		wantErr      error
		wantChannels int
		wantTokens   int
	}{
		{"revoked tokens", func(s *kicksim.Sim) { s.RevokeTokens() }, nil, 3, 2},
		{"one 401", func(s *kicksim.Sim) { s.FailNext(kicksim.EndpointChannels, 1, kicksim.Fault401) }, nil, 3, 2},
		{"two 401s", func(s *kicksim.Sim) { s.FailNext(kicksim.EndpointChannels, 2, kicksim.Fault401) }, kickrest.ErrUnauthorized, 3, 2},
		{"token endpoint refuses", func(s *kicksim.Sim) {
			s.RevokeTokens()
			s.FailNext(kicksim.EndpointToken, 1, kicksim.Fault401)
		}, kickrest.ErrUnauthorized, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := kicksim.Start(t, kicksim.WithStreamers(2))
			c := newClient(t, sim, nil)
			ctx := testContext(t)
			ids := userIDs(sim.Streamers())
			if _, err := c.Channels(ctx, ids); err != nil {
				t.Fatalf("first Channels: %v", err)
			}
			tt.setup(sim)
			got, err := c.Channels(ctx, ids)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && len(got) != 2) {
				t.Fatalf("Channels = %d items, %v; want err %v", len(got), err, tt.wantErr)
			}
			if n := sim.Requests(kicksim.EndpointChannels); n != tt.wantChannels {
				t.Errorf("channels requests = %d, want %d", n, tt.wantChannels)
			}
			if n := sim.Requests(kicksim.EndpointToken); n != tt.wantTokens {
				t.Errorf("token requests = %d, want %d", n, tt.wantTokens)
			}
			if err != nil {
				assertNoSecret(t, sim, err)
			}
		})
	}
}

func assertNoSecret(t *testing.T, sim *kicksim.Sim, err error) {
	t.Helper()
	if strings.Contains(err.Error(), sim.ClientSecret()) {
		t.Errorf("error %q contains the client secret", err)
	}
}

func TestFailuresAreClassified(t *testing.T) {
	tests := []struct {
		name   string
		ep     kicksim.Endpoint
		fault  kicksim.Fault
		want   kickrest.Kind
		status int
		// excerpt is a fragment of the body the error must quote.
		excerpt string
	}{
		{"429", kicksim.EndpointChannels, kicksim.Fault429, kickrest.RateLimited, 429, "Too Many Requests"},
		{"403 html", kicksim.EndpointChannels, kicksim.Fault403HTML, kickrest.Blocked, 403, "Just a moment..."},
		{"403 waf", kicksim.EndpointChannels, kicksim.Fault403WAF, kickrest.Blocked, 403, "Request blocked by security policy."},
		{"500", kicksim.EndpointChannels, kicksim.Fault500, kickrest.ServerError, 500, "Internal Server Error"},
		{"502 html", kicksim.EndpointChannels, kicksim.Fault502, kickrest.ServerError, 502, "502 Bad Gateway"},
		{"503", kicksim.EndpointChannels, kicksim.Fault503, kickrest.ServerError, 503, "Service Unavailable"},
		{"token 429", kicksim.EndpointToken, kicksim.Fault429, kickrest.RateLimited, 429, "Too Many Requests"},
		{"token 403 html", kicksim.EndpointToken, kicksim.Fault403HTML, kickrest.Blocked, 403, "Just a moment..."},
		{"token 401", kicksim.EndpointToken, kicksim.Fault401, kickrest.Unauthorized, 401, "invalid_client"},
		{"token 503", kicksim.EndpointToken, kicksim.Fault503, kickrest.ServerError, 503, ""},
	}
	sentinel := map[kickrest.Kind]error{
		kickrest.RateLimited: kickrest.ErrRateLimited, kickrest.Blocked: kickrest.ErrBlocked,
		kickrest.ServerError: kickrest.ErrServerError, kickrest.Unauthorized: kickrest.ErrUnauthorized,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := kicksim.Start(t, kicksim.WithStreamers(2))
			var mu sync.Mutex
			var outcomes []string
			c := newClient(t, sim, func(cfg *kickrest.Config) {
				cfg.OnRequest = func(ep, outcome string) {
					mu.Lock()
					outcomes = append(outcomes, ep+":"+outcome)
					mu.Unlock()
				}
			})
			sim.FailNext(tt.ep, 1, tt.fault)
			_, err := c.Channels(testContext(t), userIDs(sim.Streamers()))
			var ke *kickrest.Error
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want a *kickrest.Error", err)
			}
			if ke.Kind != tt.want || ke.Status != tt.status || kickrest.KindOf(err) != tt.want {
				t.Errorf("kind %v status %d, want %v %d (%v)", ke.Kind, ke.Status, tt.want, tt.status, err)
			}
			if !errors.Is(err, sentinel[tt.want]) {
				t.Errorf("errors.Is(%v, %v) = false", err, sentinel[tt.want])
			}
			if !strings.Contains(ke.Excerpt, tt.excerpt) || len(ke.Excerpt) > 210 || strings.ContainsAny(ke.Excerpt, "\n\r") {
				t.Errorf("excerpt %q: want one short line containing %q", ke.Excerpt, tt.excerpt)
			}
			assertNoSecret(t, sim, err)
			// The next call works: the fault was one answer, not a state.
			if _, err := c.Channels(testContext(t), userIDs(sim.Streamers())); err != nil {
				t.Errorf("next call: %v", err)
			}
			// Every API request is reported with its outcome; token fetches are not.
			want := []string{"channels:" + tt.want.String(), "channels:ok"}
			if tt.ep == kicksim.EndpointToken {
				want = []string{"channels:ok"}
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(want, outcomes); diff != "" {
				t.Errorf("OnRequest outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1), kicksim.WithCredentials("id-1", "the-real-secret"))
	c, err := kickrest.New(kickrest.Config{
		ClientID: "id-1", ClientSecret: "a-wrong-secret", AuthURL: sim.AuthURL(), APIURL: sim.APIURL(), AllowInsecure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Channels(testContext(t), []int64{1})
	if !errors.Is(err, kickrest.ErrUnauthorized) {
		t.Fatalf("err = %v, want unauthorized", err)
	}
	if strings.Contains(err.Error(), "a-wrong-secret") {
		t.Errorf("error %q leaks the secret", err)
	}
	st := c.TokenStatus()
	if st.Valid || st.LastError == "" || strings.Contains(st.LastError, "a-wrong-secret") {
		t.Errorf("token status %+v: want invalid with a last error and no secret", st)
	}
}

func TestNetworkError(t *testing.T) {
	c, err := kickrest.New(kickrest.Config{ClientID: "a", ClientSecret: "b", AuthURL: "http://127.0.0.1:1", APIURL: "http://127.0.0.1:1", AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Channels(testContext(t), []int64{1})
	if !errors.Is(err, kickrest.ErrNetwork) {
		t.Fatalf("err = %v, want a network error", err)
	}
}

func TestChannelsBySlugUnknownSlugFailsTheBatch(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(3))
	c := newClient(t, sim, nil)
	ctx := testContext(t)
	ss := sim.Streamers()
	got, err := c.ChannelsBySlug(ctx, []string{ss[0].Slug, ss[1].Slug})
	if err != nil || len(got) != 2 {
		t.Fatalf("ChannelsBySlug = %d items, %v", len(got), err)
	}
	_, err = c.ChannelsBySlug(ctx, []string{ss[0].Slug, "no-such-slug"})
	if !errors.Is(err, kickrest.ErrBadRequest) {
		t.Fatalf("err = %v, want a bad request", err)
	}
	if !strings.Contains(err.Error(), "no-such-slug") {
		t.Errorf("error %q does not quote Kick's message", err)
	}
}

func TestTooManyIDs(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	c := newClient(t, sim, nil)
	ctx := testContext(t)
	if _, err := c.Channels(ctx, make([]int64, 51)); !errors.Is(err, kickrest.ErrBadRequest) {
		t.Errorf("Channels(51) err = %v", err)
	}
	if _, err := c.ChannelsBySlug(ctx, make([]string, 51)); !errors.Is(err, kickrest.ErrBadRequest) {
		t.Errorf("ChannelsBySlug(51) err = %v", err)
	}
	if n := sim.Requests(kicksim.EndpointChannels); n != 0 {
		t.Errorf("%d requests sent for refused calls", n)
	}
}

func TestLivestreamsGiveChannelIDs(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(60), kicksim.WithLiveFraction(0.6), kicksim.WithSeed(3))
	c := newClient(t, sim, nil)
	ctx := testContext(t)
	world := sim.Streamers()[:50]
	got, err := c.Livestreams(ctx, userIDs(world))
	if err != nil {
		t.Fatalf("Livestreams: %v", err)
	}
	want := map[int64]int64{}
	for _, s := range world {
		if s.Live {
			want[s.UserID] = s.ChannelID
		}
	}
	gotIDs := map[int64]int64{}
	for _, l := range got {
		gotIDs[l.BroadcasterUserID] = l.ChannelID
		if l.StartedAt.IsZero() {
			t.Errorf("user %d: no started_at", l.BroadcasterUserID)
		}
	}
	if diff := cmp.Diff(want, gotIDs); diff != "" {
		t.Errorf("user → channel id (-want +got):\n%s", diff)
	}
}

func TestPublicKeyAndSubscriptions(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	c := newClient(t, sim, nil)
	ctx := testContext(t)
	key, err := c.PublicKey(ctx)
	if err != nil || key != sim.PublicKeyPEM() {
		t.Fatalf("PublicKey = %q, %v; want the sim's key", key, err)
	}
	uid := sim.Streamers()[0].UserID
	res, err := c.CreateSubscription(ctx, uid, []kickrest.EventSpec{kickrest.EventLivestreamStatus, kickrest.EventLivestreamMetadata, {Name: "no.such.event", Version: 1}})
	if err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	if len(res) != 3 || res[0].SubscriptionID == "" || res[1].SubscriptionID == "" || res[2].Error == "" {
		t.Fatalf("CreateSubscription results %+v", res)
	}
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		t.Fatalf("Subscriptions: %v", err)
	}
	var ids []string
	for _, s := range subs {
		if s.BroadcasterUserID != uid || s.Method != "webhook" || s.CreatedAt.IsZero() || s.Version != 1 {
			t.Errorf("subscription %+v", s)
		}
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	want := []string{res[0].SubscriptionID, res[1].SubscriptionID}
	slices.Sort(want)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("subscription ids (-want +got):\n%s", diff)
	}
	if _, err := c.CreateSubscription(ctx, 0, []kickrest.EventSpec{kickrest.EventLivestreamStatus}); !errors.Is(err, kickrest.ErrBadRequest) {
		t.Errorf("CreateSubscription(0) err = %v", err)
	}
}

// TestBudgetHolds sends many concurrent requests under a budget of 8 per
// 400 ms and checks, on the client side, that no 400 ms window held more
// than 8, retries after 401 included.
func TestBudgetHolds(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	rec := &recorder{}
	const limit, window = 8, 400 * time.Millisecond
	c := newClient(t, sim, func(cfg *kickrest.Config) {
		cfg.Transport, cfg.Budget, cfg.BudgetWindow = rec, limit, window
	})
	ctx := testContext(t)
	ids := userIDs(sim.Streamers())
	sim.FailNext(kicksim.EndpointChannels, 6, kicksim.Fault401)
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() { _, _ = c.Channels(ctx, ids) })
	}
	wg.Wait()
	var times []time.Time
	for _, r := range rec.snapshot() {
		if r.path == "/public/v1/channels" {
			times = append(times, r.at)
		}
	}
	if len(times) < 24 {
		t.Fatalf("only %d requests recorded", len(times))
	}
	// Sorted, request i and request i+limit are never within one window.
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 0; i+limit < len(times); i++ {
		if d := times[i+limit].Sub(times[i]); d < window {
			t.Errorf("%d requests within %v, budget %d", limit+1, d, limit)
		}
	}
	if b := c.Budget(); b.Limit != limit || b.UsedWindow > limit {
		t.Errorf("Budget() = %+v", b)
	}
}

// TestRedirectsAreRefused: a redirect from the API or the token endpoint
// is an error, and the place it points to never sees a request (the
// bearer token or the client secret would go with it).
func TestRedirectsAreRefused(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":[],"access_token":"x","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(elsewhere.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	sim := kicksim.Start(t, kicksim.WithStreamers(1))

	tests := []struct {
		name string
		mod  func(*kickrest.Config)
		want error
	}{
		{"API", func(c *kickrest.Config) { c.APIURL = redirector.URL }, kickrest.ErrBadResponse},
		{"token endpoint", func(c *kickrest.Config) { c.AuthURL = redirector.URL }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, sim, tt.mod)
			_, err := c.Channels(testContext(t), userIDs(sim.Streamers()))
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Channels through a redirect = %v, want an error (%v)", err, tt.want)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests", n)
			}
			assertNoSecret(t, sim, err)
		})
	}
}

// TestRateLimitLowersTheRate: each 429 halves the request rate (not just
// a pause), and answered requests bring it back, slowly, to the budget.
func TestRateLimitLowersTheRate(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	c := newClient(t, sim, func(c *kickrest.Config) { c.Budget, c.BudgetWindow = 600, time.Second })
	ctx := testContext(t)
	steady := c.Budget().Steady
	if steady <= 0 || c.Budget().Current != steady {
		t.Fatalf("budget at start %+v", c.Budget())
	}
	ids := userIDs(sim.Streamers())
	sim.FailNext(kicksim.EndpointChannels, 3, kicksim.Fault429)
	for range 3 {
		if _, err := c.Channels(ctx, ids); !errors.Is(err, kickrest.ErrRateLimited) {
			t.Fatalf("err = %v, want rate limited", err)
		}
	}
	if got := c.Budget().Current; got != steady/8 {
		t.Errorf("after three 429s the rate is %v, want %v", got, steady/8)
	}
	if _, err := c.Channels(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Budget().Current, steady/8+steady/20; got != want {
		t.Errorf("after one answer the rate is %v, want %v (a twentieth more)", got, want)
	}
	for range 20 {
		if _, err := c.Channels(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Budget().Current; got != steady {
		t.Errorf("after many answers the rate is %v, want the budget's %v", got, steady)
	}
}

// TestClockSkewFromDateHeader: Kick's clock skew is read from the Date
// header of API answers; it is unknown before the first answer.
func TestClockSkewFromDateHeader(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	tests := []struct {
		name   string
		offset time.Duration // of the API's Date header from our clock; 0: kicksim's own
	}{
		{"same clock", 0},
		{"Kick ahead an hour", time.Hour},
		{"Kick behind 90 s", -90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := sim.APIURL()
			if tt.offset != 0 {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Date", time.Now().Add(tt.offset).UTC().Format(http.TimeFormat))
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"data":[],"message":"OK"}`))
				}))
				t.Cleanup(srv.Close)
				api = srv.URL
			}
			c := newClient(t, sim, func(c *kickrest.Config) { c.APIURL = api })
			if _, ok := c.ClockSkew(); ok {
				t.Fatal("ClockSkew known before any answer")
			}
			if _, err := c.Channels(testContext(t), userIDs(sim.Streamers())); err != nil {
				t.Fatal(err)
			}
			skew, ok := c.ClockSkew()
			// The header has whole seconds and the exchange takes time:
			// allow two seconds either way.
			if !ok || skew < tt.offset-2*time.Second || skew > tt.offset+2*time.Second {
				t.Errorf("ClockSkew = %v, %v; want about %v", skew, ok, tt.offset)
			}
		})
	}
}

// BenchmarkChannels is one poll batch (50 channels, half live) through the
// client against kicksim: request, read, decode.
func BenchmarkChannels(b *testing.B) {
	sim := kicksim.Start(b, kicksim.WithStreamers(50), kicksim.WithLiveFraction(0.5), kicksim.WithSeed(3))
	c := newClient(b, sim, nil)
	ids := userIDs(sim.Streamers())
	b.ReportAllocs()
	for b.Loop() {
		if chs, err := c.Channels(b.Context(), ids); err != nil || len(chs) != 50 {
			b.Fatalf("%d channels, %v", len(chs), err)
		}
	}
}
