package kickrest

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind classifies a failed call.
type Kind int

// Kinds of failure. The zero Kind is never used for an Error.
const (
	// RateLimited: Kick answered 429. Kick sends no rate-limit headers; back
	// off with jitter.
	RateLimited Kind = iota + 1
	// Unauthorized: 401, after a fresh token was fetched and the call retried
	// once; or the token endpoint refused the client credentials.
	Unauthorized
	// Blocked: 403, or a body that is not JSON (a Cloudflare challenge or
	// WAF page). Retry with backoff; it may last.
	Blocked
	// ServerError: 5xx.
	ServerError
	// BadRequest: another 4xx (an unknown slug, too many ids, …). Retrying
	// the same request will not help.
	BadRequest
	// BadResponse: a 2xx whose JSON kickmon cannot decode, or an unexpected
	// status such as a redirect.
	BadResponse
	// Network: no HTTP answer (DNS, connect, TLS, timeout, reset).
	Network
)

var kindNames = map[Kind]string{
	RateLimited:  "rate-limited",
	Unauthorized: "unauthorized",
	Blocked:      "blocked",
	ServerError:  "server-error",
	BadRequest:   "bad-request",
	BadResponse:  "bad-response",
	Network:      "network",
}

// String is the kind's stable name ("rate-limited", "blocked", …), as used
// in health reports and coverage reasons.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Sentinels, one per Kind, for errors.Is.
var (
	ErrRateLimited  = errors.New("kick api: rate limited")
	ErrUnauthorized = errors.New("kick api: unauthorized")
	ErrBlocked      = errors.New("kick api: blocked")
	ErrServerError  = errors.New("kick api: server error")
	ErrBadRequest   = errors.New("kick api: bad request")
	ErrBadResponse  = errors.New("kick api: bad response")
	ErrNetwork      = errors.New("kick api: network error")
)

var sentinels = map[Kind]error{
	RateLimited:  ErrRateLimited,
	Unauthorized: ErrUnauthorized,
	Blocked:      ErrBlocked,
	ServerError:  ErrServerError,
	BadRequest:   ErrBadRequest,
	BadResponse:  ErrBadResponse,
	Network:      ErrNetwork,
}

// Error is every failure of a Client call. It never carries the access
// token or the client secret.
type Error struct {
	Kind Kind
	// Endpoint is the call that failed ("token", "channels", …).
	Endpoint string
	// Status is the HTTP status, 0 when there was no answer.
	Status int
	// Excerpt is the start of the response body, on one line, with secrets
	// removed.
	Excerpt string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Err is the underlying error (network or decoding), if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("kick api ")
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Excerpt != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(e.Excerpt))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's Kind.
func (e *Error) Is(target error) bool { return target != nil && sentinels[e.Kind] == target }

// KindOf returns the Kind of the *Error in err's chain, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

const excerptLen = 200

// excerpt renders the start of body on one line, valid UTF-8, with every
// secret replaced.
func excerpt(body []byte, secrets ...string) string {
	s := string(body)
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > excerptLen {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// looksJSON reports whether a body may be JSON: a JSON media type, or no
// usable media type and a body starting like a JSON object or array.
func looksJSON(h http.Header, body []byte) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return true
	}
	if err == nil && mt != "" && mt != "text/plain" && mt != "application/octet-stream" {
		return false // text/html and friends: a Cloudflare page, not Kick's API
	}
	t := strings.TrimLeft(string(body[:min(len(body), 64)]), " \t\r\n")
	return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")
}

// classify turns a non-2xx answer into an *Error.
func classify(endpoint string, status int, h http.Header, body []byte, secrets ...string) *Error {
	e := &Error{Endpoint: endpoint, Status: status, Excerpt: excerpt(body, secrets...)}
	switch {
	case status == http.StatusTooManyRequests:
		e.Kind = RateLimited
	case status == http.StatusUnauthorized:
		e.Kind = Unauthorized
	case status == http.StatusForbidden:
		e.Kind = Blocked
	case status >= 500:
		e.Kind = ServerError
	case status >= 300 && status < 400:
		e.Kind = BadResponse
		e.Err = fmt.Errorf("unexpected redirect")
	case !looksJSON(h, body):
		e.Kind = Blocked // a 2xx or 4xx HTML page: not Kick's API talking
	case status >= 400:
		e.Kind = BadRequest
	default:
		e.Kind = BadResponse
		e.Err = fmt.Errorf("unexpected status %d", status)
	}
	e.RetryAfter = retryAfter(h.Get("Retry-After"))
	return e
}

// retryAfter parses a Retry-After header in seconds (Kick is not known to
// send one; honoured if it ever does). Dates and nonsense yield 0.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}
