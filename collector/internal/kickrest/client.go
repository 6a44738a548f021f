// Package kickrest is the client of Kick's official API: the OAuth 2.1
// client-credentials token of id.kick.com and the public REST endpoints of
// api.kick.com that kickmon uses (channels, livestreams, public key, event
// subscriptions).
//
// The app token is cached and renewed before it expires; a 401 is answered
// by fetching a new token and retrying once. Every API request waits for
// the client's request budget (a token bucket shared by every caller, since
// Kick limits the app, not the caller), including that retry. Responses are
// decoded leniently (kick-api.md §4.6) and every failure is an *Error with a
// Kind. Neither the token nor the client secret ever appears in an error.
package kickrest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/proto/backoff"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"
)

// Defaults.
const (
	DefaultAuthURL = "https://id.kick.com"
	DefaultAPIURL  = "https://api.kick.com"
	// DefaultBudget is the default request budget per minute. Kick publishes
	// no limits (kick-api.md §1.8); its staff once raised a limit "to 100pm
	// from 20pm" (KDD #360). 60/min stays well under that 100/min with room
	// for other tools on the same app, and still refreshes about 2,500
	// streamers a minute (50 per request, 51/min steady after the jitter
	// margin of the budget).
	DefaultBudget  = 60
	DefaultTimeout = 20 * time.Second
	// MaxChannelIDs is the most broadcaster_user_id (or slug) values of one
	// channels request.
	MaxChannelIDs = 50
	// MaxLivestreamIDs is the most broadcaster_user_id values of one v1
	// livestreams request.
	MaxLivestreamIDs = 50
	// MaxSlugLen is Kick's longest slug.
	MaxSlugLen = 25

	maxBody = 8 << 20
)

// Version is kickmon's version in the User-Agent, set by the build.
var Version = "dev"

// Config configures a Client.
type Config struct {
	ClientID, ClientSecret string
	AuthURL                string // default DefaultAuthURL
	APIURL                 string // default DefaultAPIURL
	// AllowInsecure permits http:// URLs (KICKMON_ALLOW_INSECURE, for kicksim).
	AllowInsecure bool
	// Budget is the most API requests per BudgetWindow (default DefaultBudget;
	// negative: unlimited). Token requests are not counted.
	Budget int
	// BudgetWindow is the budget's window (default one minute; tests shorten it).
	BudgetWindow time.Duration
	// Timeout bounds one HTTP exchange (default DefaultTimeout).
	Timeout time.Duration
	// Transport is the HTTP transport (default http.DefaultTransport).
	Transport http.RoundTripper
	Logger    *slog.Logger
	// OnRequest, if set, sees every API request sent (not token fetches)
	// with its endpoint and outcome: "ok" or the failure kind (metrics).
	OnRequest func(endpoint, outcome string)
}

// Client calls Kick's official API. It is safe for concurrent use.
type Client struct {
	apiURL    *url.URL
	secret    string
	http      *http.Client
	oauth     clientcredentials.Config
	budget    *budget
	log       *slog.Logger
	onRequest func(endpoint, outcome string)
	tokenMu   chan struct{} // a lock that honours contexts

	mu       sync.Mutex
	token    *oauth2.Token
	issuedAt time.Time
	fetches  int64
	lastErr  string
	lastErrT time.Time

	skew      atomic.Int64 // Kick's clock minus ours, in nanoseconds; valid once skewKnown
	skewKnown atomic.Bool
}

// New validates cfg and returns a Client. It does not fetch a token yet.
func New(cfg Config) (*Client, error) {
	var problems []string
	if cfg.ClientID == "" {
		problems = append(problems, "client id is empty")
	}
	if cfg.ClientSecret == "" {
		problems = append(problems, "client secret is empty")
	}
	authURL, err := checkURL("auth URL", cfg.AuthURL, DefaultAuthURL, cfg.AllowInsecure)
	if err != nil {
		problems = append(problems, err.Error())
	}
	apiURL, err := checkURL("API URL", cfg.APIURL, DefaultAPIURL, cfg.AllowInsecure)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("kickrest: %s", strings.Join(problems, "; "))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.BudgetWindow <= 0 {
		cfg.BudgetWindow = time.Minute
	}
	if cfg.Budget == 0 {
		cfg.Budget = DefaultBudget
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: headerTransport{next: cfg.Transport},
		// Kick's API does not redirect; following one could leak the bearer
		// token to another host or downgrade to http.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c := &Client{
		apiURL: apiURL,
		secret: cfg.ClientSecret,
		http:   hc,
		oauth: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     strings.TrimSuffix(authURL.String(), "/") + "/oauth/token",
			AuthStyle:    oauth2.AuthStyleInParams, // form-encoded, as id.kick.com wants
		},
		budget:    newBudget(cfg.Budget, cfg.BudgetWindow),
		log:       log.With(logkeys.Component, "kickrest"),
		onRequest: cfg.OnRequest,
		tokenMu:   make(chan struct{}, 1),
	}
	return c, nil
}

func checkURL(name, raw, def string, insecure bool) (*url.URL, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not an absolute URL", name, raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && insecure:
	case u.Scheme == "http":
		return nil, fmt.Errorf("%s %q is not https (set KICKMON_ALLOW_INSECURE=true for a local simulator)", name, raw)
	default:
		return nil, fmt.Errorf("%s %q: scheme must be https", name, raw)
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// headerTransport sets kickmon's User-Agent and Accept on every request,
// the token request included (Kick's WAF blocks odd clients).
type headerTransport struct{ next http.RoundTripper }

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", UserAgent())
	r.Header.Set("Accept", "application/json")
	return t.next.RoundTrip(r)
}

// UserAgent is the User-Agent kickmon sends.
func UserAgent() string {
	return "kickmon/" + Version + " (+https://github.com/kickmon/kickmon)"
}

// TokenStatus describes the app token for the status API.
type TokenStatus struct {
	Valid     bool      // a token is cached and not expired
	ExpiresAt time.Time // zero when unknown or no token
	IssuedAt  time.Time
	Renewals  int64  // successful token fetches after the first
	LastError string // the last token failure ("" if none since the last success)
	LastErrAt time.Time
}

// TokenStatus reports the cached token's state (never the token).
func (c *Client) TokenStatus() TokenStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := TokenStatus{Renewals: max(c.fetches-1, 0), LastError: c.lastErr, LastErrAt: c.lastErrT, IssuedAt: c.issuedAt}
	if c.token != nil {
		st.ExpiresAt = c.token.Expiry
		st.Valid = c.token.Expiry.IsZero() || time.Now().Before(c.token.Expiry)
	}
	return st
}

// renewMargin is how long before expiry a token is renewed: a tenth of its
// lifetime, at most five minutes.
func renewMargin(lifetime time.Duration) time.Duration {
	return min(lifetime/10, 5*time.Minute)
}

func (c *Client) fresh(now time.Time) *oauth2.Token {
	if c.token == nil || c.token.AccessToken == "" {
		return nil
	}
	if exp := c.token.Expiry; !exp.IsZero() && !now.Before(exp.Add(-renewMargin(exp.Sub(c.issuedAt)))) {
		return nil
	}
	return c.token
}

// accessToken returns a cached token that is not about to expire, or
// fetches a new one. stale, if not empty, is a token the API refused: it is
// replaced even if it looks fresh.
func (c *Client) accessToken(ctx context.Context, stale string) (string, error) {
	select {
	case c.tokenMu <- struct{}{}:
	case <-ctx.Done():
		return "", &Error{Kind: Network, Endpoint: "token", Err: ctx.Err()}
	}
	defer func() { <-c.tokenMu }()

	c.mu.Lock()
	tok := c.fresh(time.Now())
	c.mu.Unlock()
	if tok != nil && tok.AccessToken != stale {
		return tok.AccessToken, nil
	}
	start := time.Now()
	tok, err := c.oauth.Token(context.WithValue(ctx, oauth2.HTTPClient, c.http))
	if err == nil && tok.AccessToken == "" {
		err = errors.New("no access_token")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		kerr := c.tokenError(ctx, err)
		c.lastErr, c.lastErrT = kerr.Error(), time.Now()
		return "", kerr
	}
	c.token, c.issuedAt = tok, start
	c.fetches++
	c.lastErr, c.lastErrT = "", time.Time{}
	c.log.Info("app token fetched", logkeys.ExpiresAt, tok.Expiry, logkeys.Renewals, max(c.fetches-1, 0))
	return tok.AccessToken, nil
}

// tokenError classifies a failure of the token endpoint without ever
// including oauth2's error text (it quotes the body verbatim).
func (c *Client) tokenError(ctx context.Context, err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		e := classify("token", re.Response.StatusCode, re.Response.Header, re.Body, c.secret, c.oauth.ClientID)
		if re.Response.StatusCode == http.StatusBadRequest && e.Kind == BadRequest {
			e.Kind = Unauthorized // id.kick.com answers bad credentials with 400 "Invalid request"
		}
		return e
	}
	if ctx.Err() != nil {
		return &Error{Kind: Network, Endpoint: "token", Err: ctx.Err()}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &Error{Kind: Network, Endpoint: "token", Err: ue.Err}
	}
	// A 2xx oauth2 could not use: unparsable JSON, no access_token.
	return &Error{Kind: BadResponse, Endpoint: "token", Err: errors.New(redact(err.Error(), c.secret))}
}

func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// call is one API request.
type call struct {
	endpoint string // name for errors and metrics
	method   string
	path     string
	query    url.Values
	body     []byte
}

// response is a successful answer. Its body is a pooled buffer: release
// it once decoded (decoders copy what they keep).
type response struct {
	body []byte
	date time.Time
	buf  *bytes.Buffer
}

// bodies holds read buffers: a poll round at 100k streamers reads 2,000
// bodies of ~25 KB, and io.ReadAll grew a new buffer for each.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer kept for reuse; the rare bigger
// answer (up to maxBody) is left to the collector.
const maxPooledBody = 256 << 10

func (r response) release() {
	if r.buf != nil && r.buf.Cap() <= maxPooledBody {
		r.buf.Reset()
		bodies.Put(r.buf)
	}
}

// do performs c with a bearer token: it waits for the budget, and on a 401
// fetches a new token and retries once (waiting for the budget again).
func (c *Client) do(ctx context.Context, cl call) (response, error) {
	tok, err := c.accessToken(ctx, "")
	if err != nil {
		return response{}, err
	}
	resp, err := c.send(ctx, cl, tok)
	if KindOf(err) != Unauthorized {
		return resp, err
	}
	c.log.Info("API refused the token; fetching a new one", logkeys.Endpoint, cl.endpoint)
	if tok, err = c.accessToken(ctx, tok); err != nil {
		return response{}, err
	}
	return c.send(ctx, cl, tok)
}

func (c *Client) send(ctx context.Context, cl call, tok string) (response, error) {
	if err := c.budget.wait(ctx); err != nil {
		return response{}, &Error{Kind: Network, Endpoint: cl.endpoint, Err: err}
	}
	resp, err := c.exchange(ctx, cl, tok)
	switch kind := KindOf(err); {
	case err == nil:
		c.budget.answered()
	case kind == RateLimited:
		if per := c.budget.limited(); per > 0 {
			c.log.Warn("Kick rate-limited the app: lowering the request rate", logkeys.Endpoint, cl.endpoint, logkeys.Rate, per)
		}
	}
	if c.onRequest != nil {
		outcome := "ok"
		if err != nil {
			outcome = KindOf(err).String()
		}
		c.onRequest(cl.endpoint, outcome)
	}
	return resp, err
}

// exchange sends one request and reads and classifies its answer.
func (c *Client) exchange(ctx context.Context, cl call, tok string) (response, error) {
	u := *c.apiURL
	u.Path = strings.TrimSuffix(u.Path, "/") + cl.path
	u.RawQuery = cl.query.Encode()
	var rd io.Reader
	if cl.body != nil {
		rd = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), rd)
	if err != nil {
		return response{}, &Error{Kind: BadRequest, Endpoint: cl.endpoint, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sent := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries no secret, but is noise
		}
		return response{}, &Error{Kind: Network, Endpoint: cl.endpoint, Err: err}
	}
	defer res.Body.Close()
	out := response{buf: bodies.Get().(*bytes.Buffer)}
	ok := false
	defer func() {
		if !ok {
			out.release() // errors keep only excerpts (copies)
		}
	}()
	if _, err := out.buf.ReadFrom(io.LimitReader(res.Body, maxBody+1)); err != nil {
		return response{}, &Error{Kind: Network, Endpoint: cl.endpoint, Status: res.StatusCode, Err: err}
	}
	body := out.buf.Bytes()
	if len(body) > maxBody {
		return response{}, &Error{Kind: BadResponse, Endpoint: cl.endpoint, Status: res.StatusCode, Err: fmt.Errorf("body over %d bytes", maxBody)}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return response{}, classify(cl.endpoint, res.StatusCode, res.Header, body, tok, c.secret)
	}
	if res.StatusCode != http.StatusNoContent && !looksJSON(res.Header, body) {
		return response{}, &Error{Kind: Blocked, Endpoint: cl.endpoint, Status: res.StatusCode, Excerpt: excerpt(body, tok, c.secret)}
	}
	date, _ := http.ParseTime(res.Header.Get("Date"))
	c.noteDate(date, sent, time.Now())
	out.body, out.date, ok = body, date, true
	return out, nil
}

// noteDate records Kick's clock skew from a Date header. The header has
// whole seconds, cut down, so the skew is taken from its middle second
// against the middle of the exchange: accurate to about ±0.5 s plus half
// the round trip.
func (c *Client) noteDate(date, sent, received time.Time) {
	if date.IsZero() {
		return
	}
	mid := sent.Add(received.Sub(sent) / 2)
	c.skew.Store(int64(date.Add(500 * time.Millisecond).Sub(mid)))
	c.skewKnown.Store(true)
}

// ClockSkew is Kick's clock minus ours (positive: Kick is ahead) from the
// Date header of the last successful API answer; ok is false before one.
func (c *Client) ClockSkew() (skew time.Duration, ok bool) {
	if !c.skewKnown.Load() {
		return 0, false
	}
	return time.Duration(c.skew.Load()), true
}

// badResponse wraps a decoding error of a 2xx body.
func badResponse(endpoint string, body []byte, err error) error {
	return &Error{Kind: BadResponse, Endpoint: endpoint, Status: http.StatusOK, Excerpt: excerpt(body), Err: err}
}

// budget is the token bucket every API request waits on, sized so that no
// window of the configured length ever holds more than limit requests even
// as Kick sees them, after network jitter: burst + rate·window + margin =
// limit, with a burst of a tenth and a margin of a twentieth of the limit
// (at least one each). A budget of 60/min allows bursts of 6 and a steady
// 51/min.
//
// A 429 halves the rate and each answered request adds back a twentieth of
// it (backoff.AIMD): Kick's limit is the app's, shared with anything else
// using the same credentials, so the budget is a ceiling, not a promise.
type budget struct {
	limiter *rate.Limiter // nil: unlimited
	aimd    *backoff.AIMD // requests per second; nil: unlimited
	limit   int
	window  time.Duration

	mu   sync.Mutex
	sent []time.Time // send times within the last window, oldest first
}

func newBudget(limit int, window time.Duration) *budget {
	b := &budget{limit: limit, window: window}
	if limit > 0 {
		burst := max(1, limit/10)
		per := max(limit-burst-max(1, limit/20), 1)
		b.limiter = rate.NewLimiter(rate.Limit(float64(per)/window.Seconds()), burst)
		b.aimd = backoff.NewAIMD(float64(per) / window.Seconds())
	}
	return b
}

// limited lowers the rate after a 429 and returns the new rate in requests
// per window (0 when unlimited).
func (b *budget) limited() float64 {
	if b.aimd == nil {
		return 0
	}
	r := b.aimd.Decrease()
	b.limiter.SetLimit(rate.Limit(r))
	return r * b.window.Seconds()
}

// answered raises the rate back towards the budget after a success.
func (b *budget) answered() {
	if b.aimd != nil && b.aimd.Rate() < b.aimd.Full() {
		b.limiter.SetLimit(rate.Limit(b.aimd.Increase()))
	}
}

func (b *budget) wait(ctx context.Context) error {
	if b.limiter != nil {
		if err := b.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("request budget: %w", err) // the deadline comes before the next slot
		}
	}
	now := time.Now()
	b.mu.Lock()
	b.sent = append(b.prune(now), now)
	b.mu.Unlock()
	return nil
}

func (b *budget) prune(now time.Time) []time.Time {
	i := 0
	for i < len(b.sent) && now.Sub(b.sent[i]) >= b.window {
		i++
	}
	return b.sent[i:]
}

// BudgetStatus describes the request budget.
type BudgetStatus struct {
	Limit      int           // requests per window; negative: unlimited
	Window     time.Duration // one minute unless a test changed it
	UsedWindow int           // requests sent in the last window
	// Steady and Current are the sustained request rate per window: what
	// the budget allows, and what it allows now (lower after 429s).
	Steady, Current float64
}

// Budget reports the request budget and how much of it the last window used.
func (c *Client) Budget() BudgetStatus {
	b := c.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = b.prune(time.Now())
	st := BudgetStatus{Limit: b.limit, Window: b.window, UsedWindow: len(b.sent)}
	if b.aimd != nil {
		st.Steady, st.Current = b.aimd.Full()*b.window.Seconds(), b.aimd.Rate()*b.window.Seconds()
	}
	return st
}
