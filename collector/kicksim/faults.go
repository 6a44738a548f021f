package kicksim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint names one endpoint of the sim for faults and request counters.
type Endpoint int

// Endpoints. Their String values are the names used by the control API.
const (
	EndpointToken              Endpoint = iota + 1 // POST /oauth/token
	EndpointChannels                               // GET /public/v1/channels
	EndpointLivestreams                            // GET /public/v1/livestreams
	EndpointUsersLivestreams                       // GET /public/v1/users/livestreams
	EndpointPublicKey                              // GET /public/v1/public-key
	EndpointSubscriptions                          // /public/v1/events/subscriptions (all methods)
	EndpointPusher                                 // GET /app/{key} (the WebSocket handshake)
	EndpointRealtimeConnection                     // POST /api/v1/realtime/connection (negotiation)
	EndpointRealtimeToken                          // POST /api/v1/realtime/auth/connection
	EndpointCentrifugo                             // GET /connection/websocket (the WebSocket handshake)
	endpointCount
)

var endpointNames = [endpointCount]string{
	EndpointToken:              "token",
	EndpointChannels:           "channels",
	EndpointLivestreams:        "livestreams",
	EndpointUsersLivestreams:   "users/livestreams",
	EndpointPublicKey:          "public-key",
	EndpointSubscriptions:      "subscriptions",
	EndpointPusher:             "pusher",
	EndpointRealtimeConnection: "realtime/connection",
	EndpointRealtimeToken:      "realtime/token",
	EndpointCentrifugo:         "centrifugo",
}

func (e Endpoint) String() string {
	if e > 0 && e < endpointCount {
		return endpointNames[e]
	}
	return "endpoint(" + strconv.Itoa(int(e)) + ")"
}

// ParseEndpoint parses an endpoint name as printed by String.
func ParseEndpoint(s string) (Endpoint, error) {
	for e := EndpointToken; e < endpointCount; e++ {
		if endpointNames[e] == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("kicksim: unknown endpoint %q (want one of %s)", s, strings.Join(endpointNames[1:], ", "))
}

type faultKind int

const (
	faultNone faultKind = iota
	fault429
	fault401
	fault403HTML
	fault403WAF
	fault500
	fault502
	fault503
	faultSlow
)

var faultNames = map[faultKind]string{
	fault429: "429", fault401: "401", fault403HTML: "403html", fault403WAF: "403waf",
	fault500: "500", fault502: "502", fault503: "503", faultSlow: "slow",
}

// Fault is how the sim answers a faulted call.
type Fault struct {
	kind  faultKind
	delay time.Duration
}

// Faults.
var (
	// Fault429 answers 429 Too Many Requests without any rate-limit header
	// (Kick sends none).
	Fault429 = Fault{kind: fault429}
	// Fault401 answers as for an invalid token (on the token endpoint: the
	// OAuth error shape).
	Fault401 = Fault{kind: fault401}
	// Fault403HTML answers Cloudflare's "Just a moment..." challenge page
	// (text/html).
	Fault403HTML = Fault{kind: fault403HTML}
	// Fault403WAF answers Cloudflare's WAF JSON
	// {"error":"Request blocked by security policy.","reference":"…"}.
	Fault403WAF = Fault{kind: fault403WAF}
	Fault500    = Fault{kind: fault500}
	Fault502    = Fault{kind: fault502}
	Fault503    = Fault{kind: fault503}
)

// FaultSlow answers normally after d (or when the sim closes or the client
// goes away).
func FaultSlow(d time.Duration) Fault { return Fault{kind: faultSlow, delay: d} }

func (f Fault) String() string {
	if f.kind == faultSlow {
		return "slow:" + f.delay.String()
	}
	if n, ok := faultNames[f.kind]; ok {
		return n
	}
	return "none"
}

// ParseFault parses a fault name: 429, 401, 403html, 403waf, 500, 502, 503
// or slow:<duration> (e.g. slow:2s).
func ParseFault(s string) (Fault, error) {
	if d, ok := strings.CutPrefix(s, "slow:"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 {
			return Fault{}, fmt.Errorf("kicksim: bad fault %q: want slow:<duration>", s)
		}
		return FaultSlow(dur), nil
	}
	for k, n := range faultNames {
		if n == s && k != faultSlow {
			return Fault{kind: k}, nil
		}
	}
	return Fault{}, fmt.Errorf("kicksim: unknown fault %q (want 429, 401, 403html, 403waf, 500, 502, 503 or slow:<duration>)", s)
}

type pendingFault struct {
	f Fault
	n int
}

// faults holds the queued faults and request counters per endpoint.
type faults struct {
	mu       sync.Mutex
	queue    [endpointCount][]pendingFault
	armed    [endpointCount]atomic.Bool // fast path: any fault queued
	requests [endpointCount]atomic.Int64
}

func newFaults() *faults { return &faults{} }

func (f *faults) add(ep Endpoint, n int, fl Fault) {
	if ep <= 0 || ep >= endpointCount || n <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue[ep] = append(f.queue[ep], pendingFault{f: fl, n: n})
	f.armed[ep].Store(true)
}

// take counts a request and returns the fault to apply to it, if any.
func (f *faults) take(ep Endpoint) (Fault, bool) {
	f.requests[ep].Add(1)
	if !f.armed[ep].Load() {
		return Fault{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queue[ep]
	if len(q) == 0 {
		return Fault{}, false
	}
	fl := q[0].f
	q[0].n--
	if q[0].n == 0 {
		q = q[1:]
	}
	f.queue[ep] = q
	f.armed[ep].Store(len(q) > 0)
	return fl, true
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ep := range f.queue {
		f.queue[ep] = nil
		f.armed[ep].Store(false)
	}
}

// FailNext answers the next n calls of ep with fault f. Calls queue up: a
// second FailNext applies after the first one's n calls.
func (s *Sim) FailNext(ep Endpoint, n int, f Fault) {
	s.log.Info("fault queued", logEndpoint, ep.String(), logFault, f.String(), "n", n)
	s.faults.add(ep, n, f)
}

// ClearFaults drops every queued fault.
func (s *Sim) ClearFaults() { s.faults.clear() }

// Requests is how many requests ep has received (faulted ones included).
func (s *Sim) Requests(ep Endpoint) int {
	if ep <= 0 || ep >= endpointCount {
		return 0
	}
	return int(s.faults.requests[ep].Load())
}

// applyFault writes the fault's response and reports whether the request is
// finished. A slow fault waits and then lets the request go on.
func (s *Sim) applyFault(w http.ResponseWriter, r *http.Request, ep Endpoint) bool {
	f, ok := s.faults.take(ep)
	if !ok {
		return false
	}
	s.log.Debug("fault applied", logEndpoint, ep.String(), logFault, f.String())
	switch f.kind {
	case faultSlow:
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case fault429:
		writeJSON(w, http.StatusTooManyRequests, envelope{Data: struct{}{}, Message: "Too Many Requests"})
	case fault401:
		if ep == EndpointToken {
			writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "Client authentication failed", Message: "Client authentication failed"})
		} else {
			writeUnauthorized(w)
		}
	case fault403HTML:
		writeCloudflareChallenge(w)
	case fault403WAF:
		w.Header().Set("Cf-Ray", cfRay())
		writeJSON(w, http.StatusForbidden, struct {
			Error     string `json:"error"`
			Reference string `json:"reference"`
		}{"Request blocked by security policy.", randomHex(4)})
	case fault500:
		writeJSON(w, http.StatusInternalServerError, envelope{Data: struct{}{}, Message: "Internal Server Error"})
	case fault502:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"))
	case fault503:
		writeJSON(w, http.StatusServiceUnavailable, envelope{Data: struct{}{}, Message: "Service Unavailable"})
	}
	return true
}

func cfRay() string { return randomHex(8) + "-AMS" }

// writeCloudflareChallenge writes a Cloudflare "Just a moment..." page as
// Kick's users have reported it (kick-api.md §2.6).
func writeCloudflareChallenge(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Cf-Mitigated", "challenge")
	h.Set("Cf-Ray", cfRay())
	h.Set("Server", "cloudflare")
	h.Set("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta http-equiv="X-UA-Compatible" content="IE=Edge"><meta name="robots" content="noindex,nofollow"><meta name="viewport" content="width=device-width,initial-scale=1"></head><body class="no-js"><div class="main-wrapper" role="main"><div class="main-content"><noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to continue</span></div></noscript></div></div><script>(function(){window._cf_chl_opt={cvId: '3',cType: 'managed'};}());</script></body></html>`))
}

// writeCloudflareBlock writes Cloudflare's "Attention Required!" block page
// (403 text/html with a cf-ray header), as web.kick.com answers a blocked
// client.
func writeCloudflareBlock(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Cf-Ray", cfRay())
	h.Set("Server", "cloudflare")
	h.Set("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
  <div id="cf-wrapper">
    <div id="cf-error-details" class="cf-error-details-wrapper">
      <div class="cf-wrapper cf-header cf-error-overview">
        <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
        <h2 class="cf-subheadline"><span data-translate="unable_to_access">You are unable to access</span> kick.com</h2>
      </div>
    </div>
  </div>
</body>
</html>
`))
}
