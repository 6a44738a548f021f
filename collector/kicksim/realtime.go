package kicksim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
)

// Realtime says which realtime providers the sim serves and offers
// (kick-api.md §2.7). The zero value is RealtimeBoth.
type Realtime int

// Realtime providers.
const (
	// RealtimeBoth serves Pusher and Centrifugo; negotiation offers both,
	// Centrifugo first.
	RealtimeBoth Realtime = iota
	// RealtimePusher serves and offers only Pusher.
	RealtimePusher
	// RealtimeCentrifugo serves and offers only Centrifugo.
	RealtimeCentrifugo
	// RealtimeNone serves no realtime endpoint; negotiation offers nothing.
	RealtimeNone
)

var realtimeNames = map[Realtime]string{
	RealtimeBoth: "both", RealtimePusher: "pusher", RealtimeCentrifugo: "centrifugo", RealtimeNone: "none",
}

func (r Realtime) String() string {
	if n, ok := realtimeNames[r]; ok {
		return n
	}
	return "realtime(" + strconv.Itoa(int(r)) + ")"
}

// ParseRealtime parses pusher, centrifugo, both or none.
func ParseRealtime(s string) (Realtime, error) {
	for r, n := range realtimeNames {
		if n == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("kicksim: unknown realtime %q (want pusher, centrifugo, both or none)", s)
}

func (r Realtime) pusher() bool     { return r == RealtimeBoth || r == RealtimePusher }
func (r Realtime) centrifugo() bool { return r == RealtimeBoth || r == RealtimeCentrifugo }

// WithRealtime sets which realtime endpoints run and what negotiation offers
// at first (default RealtimeBoth). A provider left out here is not served
// at all: its endpoint answers 404.
func WithRealtime(r Realtime) Option { return func(o *options) { o.realtime = r } }

// WithRealtimeTokenTTL sets the lifetime of realtime (Centrifugo) tokens
// (default 2700 s, Kick's). It is whole seconds on the wire, at least 1.
func WithRealtimeTokenTTL(d time.Duration) Option { return func(o *options) { o.rtTokenTTL = d } }

// WithCentrifugoPing sets the Centrifugo server ping interval (default 25 s,
// Kick's and the library's). The pong timeout is the library's 10 s, or half
// an interval shorter than 15 s (the library wants it shorter
// than the interval).
func WithCentrifugoPing(interval time.Duration) Option {
	return func(o *options) {
		o.cfPing, o.cfPong = interval, 0
		if interval > 0 && interval < 15*time.Second {
			o.cfPong = interval / 2
		}
	}
}

// DefaultRealtimeTokenTTL is the lifetime of Kick's guest realtime JWT.
const DefaultRealtimeTokenTTL = 2700 * time.Second

// KickOrigin is the Origin of Kick's own pages, which Kick's Centrifugo
// server accepts (kick-api.md §2.7).
const KickOrigin = "https://kick.com"

// realtime is the state of negotiation, realtime tokens and the realtime
// faults.
type realtime struct {
	offerPusher     atomic.Bool
	offerCentrifugo atomic.Bool
	pusherRetired   atomic.Bool
	blocked         atomic.Bool
	refuseTokens    atomic.Bool
	ttl             atomic.Int64 // nanoseconds
	encoding        atomic.Int32 // DataEncoding

	secret   []byte
	jti      atomic.Int64 // last token serial issued
	expireTo atomic.Int64 // tokens with a serial <= this are expired

	mu     sync.Mutex
	origin string // "" = Kick's rule

	negotiations, negotiationsBlocked   atomic.Int64
	tokensIssued, tokensRefused         atomic.Int64
	cfConnects, cfRefused, cfRefreshes  atomic.Int64
	cfRefreshRefused, cfPublications    atomic.Int64
	cfPubString, cfPubObject, pubSerial atomic.Int64
	pusherRetiredRefusals               atomic.Int64
}

func newRealtime(o *options) *realtime {
	rt := &realtime{secret: []byte(randomHex(32))}
	rt.offerPusher.Store(o.realtime.pusher())
	rt.offerCentrifugo.Store(o.realtime.centrifugo())
	rt.ttl.Store(int64(o.rtTokenTTL))
	return rt
}

// WebURL is the base of the web API with the realtime negotiation and token
// endpoints (KICK_WEB_URL, Kick's https://web.kick.com).
func (s *Sim) WebURL() string { return s.baseURL() }

// SetRealtimeOffer changes which providers negotiation offers. It does not
// start or stop endpoints (see WithRealtime): offering a provider the sim
// does not serve is a way to offer a dead one.
func (s *Sim) SetRealtimeOffer(pusher, centrifugo bool) {
	s.log.Info("realtime offer", "pusher", pusher, "centrifugo", centrifugo)
	s.rt.offerPusher.Store(pusher)
	s.rt.offerCentrifugo.Store(centrifugo)
}

// RetirePusher is Pusher's end at Kick: negotiation stops offering Pusher,
// every Pusher connect is answered with pusher:error 4001 "App key … not in
// this cluster" and closed with 4001, and open Pusher sockets are closed so.
// There is no way back (Kick's key does not come back either).
func (s *Sim) RetirePusher() {
	s.log.Info("pusher retired")
	s.rt.offerPusher.Store(false)
	s.rt.pusherRetired.Store(true)
	s.CloseSockets(CloseAppNotFound, s.appKeyGone())
}

func (s *Sim) appKeyGone() string {
	return "App key " + s.o.appKey + " not in this cluster. Did you forget to specify the cluster?"
}

// BlockNegotiation(true) makes the negotiation and token endpoints answer
// Cloudflare's 403 "Attention Required!" block page (text/html, cf-ray);
// false lifts it.
func (s *Sim) BlockNegotiation(on bool) {
	s.log.Info("block negotiation", "on", on)
	s.rt.blocked.Store(on)
}

// RefuseRealtimeTokens(true) makes the token endpoint answer 403
// {"message":"Forbidden"}. The Centrifugo server always refuses expired
// and unknown tokens, so once the tokens clients hold expire (or
// ExpireRealtimeTokens), they cannot connect or refresh any more.
func (s *Sim) RefuseRealtimeTokens(on bool) {
	s.log.Info("refuse realtime tokens", "on", on)
	s.rt.refuseTokens.Store(on)
}

// SetRealtimeTokenTTL sets the lifetime of realtime tokens issued from now
// on (whole seconds on the wire, at least 1).
func (s *Sim) SetRealtimeTokenTTL(d time.Duration) {
	if d <= 0 {
		d = DefaultRealtimeTokenTTL
	}
	s.rt.ttl.Store(int64(d))
}

// ExpireRealtimeTokens treats every realtime token issued so far as
// expired: connects and refreshes with one are refused as expired
// (Centrifugo's "token expired" error 109 and "connection expired" 3005),
// and open Centrifugo connections are closed as expired (3005), so their
// clients must fetch a new token.
func (s *Sim) ExpireRealtimeTokens() {
	s.log.Info("realtime tokens expired")
	s.rt.expireTo.Store(s.rt.jti.Load())
	s.cf.closeAll(centrifuge.DisconnectExpired)
}

// RequireOrigin sets the Origin rule of the Centrifugo WebSocket handshake:
// "" is Kick's (https://kick.com or no Origin accepted; chrome-extension://,
// moz-extension://, null and anything else refused with 403); otherwise
// only exactly that Origin is accepted.
func (s *Sim) RequireOrigin(origin string) {
	s.log.Info("require origin", "origin", origin)
	s.rt.mu.Lock()
	s.rt.origin = origin
	s.rt.mu.Unlock()
}

// originAllowed applies the Origin rule to a Centrifugo handshake.
func (rt *realtime) originAllowed(r *http.Request) bool {
	rt.mu.Lock()
	want := rt.origin
	rt.mu.Unlock()
	got, present := r.Header["Origin"]
	if want != "" {
		return present && len(got) == 1 && got[0] == want
	}
	return !present || len(got) == 1 && got[0] == KickOrigin
}

// DataEncoding is how the Centrifugo endpoint encodes a publication's inner
// data (kick-api.md §2.7 has seen both).
type DataEncoding int32

// Data encodings.
const (
	// DataAlternate alternates string and object, string first (default).
	DataAlternate DataEncoding = iota
	// DataString sends data as a JSON string holding the object, as Pusher.
	DataString
	// DataObject sends data as a JSON object.
	DataObject
)

var encodingNames = map[DataEncoding]string{DataAlternate: "alternate", DataString: "string", DataObject: "object"}

func (e DataEncoding) String() string {
	if n, ok := encodingNames[e]; ok {
		return n
	}
	return "encoding(" + strconv.Itoa(int(e)) + ")"
}

// ParseDataEncoding parses alternate, string or object.
func ParseDataEncoding(s string) (DataEncoding, error) {
	for e, n := range encodingNames {
		if n == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("kicksim: unknown data encoding %q (want alternate, string or object)", s)
}

// SetCentrifugoData sets how Centrifugo publications carry their data.
func (s *Sim) SetCentrifugoData(e DataEncoding) { s.rt.encoding.Store(int32(e)) }

// RealtimeStats counts what the realtime side of the sim has done, so tests
// can tell which provider a client used.
type RealtimeStats struct {
	Negotiations        int64 `json:"negotiations"`         // answered 200
	NegotiationsBlocked int64 `json:"negotiations_blocked"` // answered the Cloudflare page (token endpoint included)
	TokensIssued        int64 `json:"tokens_issued"`
	TokensRefused       int64 `json:"tokens_refused"`
	// Centrifugo: connects accepted and refused (bad or expired token),
	// token refreshes accepted and refused, connections and channel
	// subscriptions open now, publications sent (string and object data).
	CentrifugoConnects       int64 `json:"centrifugo_connects"`
	CentrifugoRefused        int64 `json:"centrifugo_refused"`
	CentrifugoRefreshes      int64 `json:"centrifugo_refreshes"`
	CentrifugoRefreshRefused int64 `json:"centrifugo_refresh_refused"`
	CentrifugoClients        int   `json:"centrifugo_clients"`
	CentrifugoSubscriptions  int   `json:"centrifugo_subscriptions"`
	CentrifugoPublications   int64 `json:"centrifugo_publications"`
	CentrifugoStringData     int64 `json:"centrifugo_string_data"`
	CentrifugoObjectData     int64 `json:"centrifugo_object_data"`
	// Pusher: open sockets and connects refused with 4001 since RetirePusher.
	PusherSockets         int   `json:"pusher_sockets"`
	PusherRetiredRefusals int64 `json:"pusher_retired_refusals"`
	PusherRetired         bool  `json:"pusher_retired"`
	OfferPusher           bool  `json:"offer_pusher"`
	OfferCentrifugo       bool  `json:"offer_centrifugo"`
}

// RealtimeStats returns the realtime counters.
func (s *Sim) RealtimeStats() RealtimeStats {
	rt := s.rt
	st := RealtimeStats{
		Negotiations: rt.negotiations.Load(), NegotiationsBlocked: rt.negotiationsBlocked.Load(),
		TokensIssued: rt.tokensIssued.Load(), TokensRefused: rt.tokensRefused.Load(),
		CentrifugoConnects: rt.cfConnects.Load(), CentrifugoRefused: rt.cfRefused.Load(),
		CentrifugoRefreshes: rt.cfRefreshes.Load(), CentrifugoRefreshRefused: rt.cfRefreshRefused.Load(),
		CentrifugoPublications: rt.cfPublications.Load(),
		CentrifugoStringData:   rt.cfPubString.Load(), CentrifugoObjectData: rt.cfPubObject.Load(),
		PusherSockets: s.Sockets(), PusherRetiredRefusals: rt.pusherRetiredRefusals.Load(),
		PusherRetired: rt.pusherRetired.Load(),
		OfferPusher:   rt.offerPusher.Load(), OfferCentrifugo: rt.offerCentrifugo.Load(),
	}
	st.CentrifugoClients, st.CentrifugoSubscriptions = s.cf.counts()
	return st
}

// Wire shapes of the negotiation and token endpoints (kick-api.md §2.7).

type negotiationRequest struct {
	Client struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"client"`
	Capabilities struct {
		AcceptedProviders []struct {
			Provider string `json:"provider"`
		} `json:"accepted_providers"`
	} `json:"capabilities"`
}

// NegotiationResponse is the answer of POST /api/v1/realtime/connection.
type NegotiationResponse struct {
	Data struct {
		Connections []RealtimeConnection `json:"connections"`
		Mode        string               `json:"mode"`
	} `json:"data"`
}

// RealtimeConnection is one offered provider. Credentials hold url for
// centrifugo, app_key and cluster for pusher.
type RealtimeConnection struct {
	Provider    string              `json:"provider"`
	Credentials RealtimeCredentials `json:"credentials"`
}

// RealtimeCredentials of one provider; only the provider's fields are set.
type RealtimeCredentials struct {
	URL     string `json:"url,omitempty"`
	AppKey  string `json:"app_key,omitempty"`
	Cluster string `json:"cluster,omitempty"`
}

// TokenResponse is the answer of POST /api/v1/realtime/auth/connection.
type TokenResponse struct {
	Data struct {
		Token string `json:"token"`
	} `json:"data"`
	Message string `json:"message"`
}

// Provider names on the wire.
const (
	ProviderPusher     = "pusher"
	ProviderCentrifugo = "centrifugo"
)

// pusherCluster is the cluster Kick's negotiation names with its key.
const pusherCluster = "us2"

// webError is the error shape of web.kick.com (a Laravel app).
type webError struct {
	Message string `json:"message"`
}

func (s *Sim) handleNegotiation(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, EndpointRealtimeConnection) || s.blockedPage(w) {
		return
	}
	var req negotiationRequest
	if err := decodeWebBody(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, webError{err.Error()})
		return
	}
	if req.Client.ID == "" {
		writeJSON(w, http.StatusUnprocessableEntity, webError{"The client.id field is required."})
		return
	}
	accepted := make(map[string]bool)
	for _, p := range req.Capabilities.AcceptedProviders {
		accepted[p.Provider] = true
	}
	var resp NegotiationResponse
	resp.Data.Mode = "websocket"
	resp.Data.Connections = []RealtimeConnection{}
	if accepted[ProviderCentrifugo] && s.rt.offerCentrifugo.Load() {
		resp.Data.Connections = append(resp.Data.Connections, RealtimeConnection{Provider: ProviderCentrifugo, Credentials: RealtimeCredentials{URL: s.CentrifugoURL()}})
	}
	if accepted[ProviderPusher] && s.rt.offerPusher.Load() {
		resp.Data.Connections = append(resp.Data.Connections, RealtimeConnection{Provider: ProviderPusher, Credentials: RealtimeCredentials{AppKey: s.o.appKey, Cluster: pusherCluster}})
	}
	s.rt.negotiations.Add(1)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Sim) handleRealtimeToken(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, EndpointRealtimeToken) || s.blockedPage(w) {
		return
	}
	var req struct {
		ClientID string `json:"client_id"`
	}
	if err := decodeWebBody(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, webError{err.Error()})
		return
	}
	if req.ClientID == "" {
		writeJSON(w, http.StatusUnprocessableEntity, webError{"The client_id field is required."})
		return
	}
	if s.rt.refuseTokens.Load() {
		s.rt.tokensRefused.Add(1)
		writeJSON(w, http.StatusForbidden, webError{"Forbidden"})
		return
	}
	var resp TokenResponse
	resp.Data.Token = s.rt.issue(req.ClientID, s.o.now())
	resp.Message = "success"
	s.rt.tokensIssued.Add(1)
	writeJSON(w, http.StatusOK, resp)
}

// blockedPage writes the Cloudflare block page while BlockNegotiation is on.
func (s *Sim) blockedPage(w http.ResponseWriter) bool {
	if !s.rt.blocked.Load() {
		return false
	}
	s.rt.negotiationsBlocked.Add(1)
	writeCloudflareBlock(w)
	return true
}

func decodeWebBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

// Realtime tokens are HS256 JWTs with sub (the client id), iat, exp and
// jti (a serial, so ExpireRealtimeTokens can expire every token issued
// before it, even within the same second).

type rtClaims struct {
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

func (rt *realtime) issue(sub string, now time.Time) string {
	ttl := time.Duration(rt.ttl.Load())
	secs := max(1, int64(math.Ceil(ttl.Seconds())))
	c := rtClaims{Sub: sub, Iat: now.Unix(), Exp: now.Unix() + secs, Jti: strconv.FormatInt(rt.jti.Add(1), 10)}
	signing := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(marshal(c))
	return signing + "." + base64.RawURLEncoding.EncodeToString(rt.sign(signing))
}

func (rt *realtime) sign(s string) []byte {
	m := hmac.New(sha256.New, rt.secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}

var (
	errTokenInvalid = errors.New("invalid token")
	errTokenExpired = errors.New("token expired")
)

// verify checks a realtime token: errTokenInvalid when it is not one of
// ours, errTokenExpired when it has expired (or was expired by
// ExpireRealtimeTokens).
func (rt *realtime) verify(token string, now time.Time) (rtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != jwtHeader {
		return rtClaims{}, errTokenInvalid
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, rt.sign(parts[0]+"."+parts[1])) {
		return rtClaims{}, errTokenInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return rtClaims{}, errTokenInvalid
	}
	var c rtClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Sub == "" {
		return rtClaims{}, errTokenInvalid
	}
	jti, err := strconv.ParseInt(c.Jti, 10, 64)
	if err != nil {
		return rtClaims{}, errTokenInvalid
	}
	if c.Exp <= now.Unix() || jti <= rt.expireTo.Load() {
		return c, errTokenExpired
	}
	return c, nil
}
