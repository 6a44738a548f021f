package realtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
)

// DefaultWebURL is where kick.com's pages negotiate the realtime provider
// (kick-api.md §2.7).
const DefaultWebURL = "https://web.kick.com"

// DefaultOrigin is the Origin kick.com's pages send; Kick's Centrifugo
// accepts it or none, and refuses browser-extension origins.
const DefaultOrigin = "https://kick.com"

// Paths of the negotiation and token endpoints under the web URL.
const (
	connectionPath = "/api/v1/realtime/connection"
	tokenPath      = "/api/v1/realtime/auth/connection"
)

// maxAnswerBytes bounds what is read of a negotiation or token answer.
const maxAnswerBytes = 1 << 20

// Offer is one provider offered by negotiation, or configured as a fallback.
type Offer struct {
	Provider string // Pusher or Centrifugo
	// URL is Centrifugo's WebSocket URL, or Pusher's (built from the
	// configured template with the negotiated key and cluster).
	URL string
	// AppKey and Cluster are Pusher's negotiated credentials (empty for a
	// fallback).
	AppKey, Cluster string
	// Negotiated is true when Kick offered it, false for a fallback URL.
	Negotiated bool
}

// NegotiationError is a failed negotiation or token request. Its text is
// what status and coverage show: "negotiation: 403 blocked",
// "negotiation: 404 not found", "negotiation: dial tcp …: connection refused".
type NegotiationError struct {
	Op      string // "negotiation" or "token"
	Status  int    // HTTP status; 0 for a network or decoding failure
	Blocked bool   // a 403 or a Cloudflare page
	Detail  string
}

func (e *NegotiationError) Error() string {
	switch {
	case e.Blocked:
		return fmt.Sprintf("%s: %d blocked", e.Op, e.Status)
	case e.Status != 0 && e.Detail != "":
		return fmt.Sprintf("%s: %d %s", e.Op, e.Status, e.Detail)
	case e.Status != 0:
		return fmt.Sprintf("%s: %d %s", e.Op, e.Status, strings.ToLower(http.StatusText(e.Status)))
	}
	return e.Op + ": " + e.Detail
}

// Negotiator asks web.kick.com which realtime providers are offered and
// for Centrifugo connection tokens, as one made-up web client.
type Negotiator struct {
	// WebURL is the base URL (DefaultWebURL when empty).
	WebURL string
	// Origin is sent with every request ("" sends none).
	Origin string
	// Header is sent with every request (e.g. User-Agent). Optional.
	Header http.Header
	// HTTP sends the requests (a client with a 15 s timeout when nil).
	HTTP *http.Client
	// ClientID is the made-up client id, the same for negotiation and
	// tokens (a random UUID when empty, made on first use).
	ClientID string
}

func (n *Negotiator) client() *http.Client {
	if n.HTTP != nil {
		return n.HTTP
	}
	return &http.Client{Timeout: 15 * time.Second}
}

// clientID returns the client id, making one on first use; not safe for
// concurrent first use (NewManager makes it before).
func (n *Negotiator) clientID() string {
	if n.ClientID == "" {
		n.ClientID = newUUID()
	}
	return n.ClientID
}

// Offers asks which of the accepted providers Kick offers, in Kick's
// order. Pusher offers carry the key and cluster; their URL is left empty.
func (n *Negotiator) Offers(ctx context.Context, accepted []string) ([]Offer, error) {
	type provider struct {
		Provider string `json:"provider"`
	}
	body := struct {
		Client struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"client"`
		Capabilities struct {
			AcceptedProviders []provider `json:"accepted_providers"`
		} `json:"capabilities"`
	}{}
	body.Client.ID, body.Client.Type = n.clientID(), "web"
	for _, a := range accepted {
		body.Capabilities.AcceptedProviders = append(body.Capabilities.AcceptedProviders, provider{a})
	}
	var answer struct {
		Data struct {
			Connections []struct {
				Provider    kickjson.String `json:"provider"`
				Credentials struct {
					URL     kickjson.String `json:"url"`
					AppKey  kickjson.String `json:"app_key"`
					Cluster kickjson.String `json:"cluster"`
				} `json:"credentials"`
			} `json:"connections"`
			Mode kickjson.String `json:"mode"`
		} `json:"data"`
	}
	if err := n.post(ctx, "negotiation", connectionPath, body, &answer); err != nil {
		return nil, err
	}
	var out []Offer
	for _, c := range answer.Data.Connections {
		o := Offer{Provider: strings.ToLower(string(c.Provider)), Negotiated: true}
		switch o.Provider {
		case Centrifugo:
			o.URL = string(c.Credentials.URL)
			if o.URL == "" {
				continue
			}
		case Pusher:
			o.AppKey, o.Cluster = string(c.Credentials.AppKey), string(c.Credentials.Cluster)
			if o.AppKey == "" {
				continue
			}
		default:
			continue // a provider kickmon does not speak
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, &NegotiationError{Op: "negotiation", Status: http.StatusOK, Detail: "no provider kickmon speaks offered"}
	}
	return out, nil
}

// Token fetches a Centrifugo connection token and when it expires (zero
// when the token does not say). A refused token is a *NegotiationError
// with Status 401 or 403.
func (n *Negotiator) Token(ctx context.Context) (string, time.Time, error) {
	var answer struct {
		Data struct {
			Token kickjson.String `json:"token"`
		} `json:"data"`
	}
	if err := n.post(ctx, "token", tokenPath, map[string]string{"client_id": n.clientID()}, &answer); err != nil {
		return "", time.Time{}, err
	}
	if answer.Data.Token == "" {
		return "", time.Time{}, &NegotiationError{Op: "token", Status: http.StatusOK, Detail: "answer has no token"}
	}
	return string(answer.Data.Token), tokenExpiry(string(answer.Data.Token)), nil
}

// post sends body as JSON and decodes a 2xx JSON answer into out.
func (n *Negotiator) post(ctx context.Context, op, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", op, err)
	}
	base := n.WebURL
	if base == "" {
		base = DefaultWebURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return &NegotiationError{Op: op, Detail: err.Error()}
	}
	for k, v := range n.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if n.Origin != "" {
		req.Header.Set("Origin", n.Origin)
	}
	resp, err := n.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the configuration, not needed in every message
		}
		return &NegotiationError{Op: op, Detail: err.Error()}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return &NegotiationError{Op: op, Status: resp.StatusCode, Detail: "read answer: " + err.Error()}
	}
	html := !json.Valid(raw) && (strings.Contains(resp.Header.Get("Content-Type"), "html") || bytes.Contains(bytes.ToLower(raw[:min(len(raw), 512)]), []byte("<!doctype html")))
	cloudflare := resp.Header.Get("Cf-Ray") != "" || bytes.Contains(raw, []byte("Cloudflare"))
	switch {
	case resp.StatusCode == http.StatusForbidden && (html || cloudflare):
		return &NegotiationError{Op: op, Status: resp.StatusCode, Blocked: true}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return &NegotiationError{Op: op, Status: resp.StatusCode, Detail: answerMessage(raw, resp.StatusCode)}
	case html:
		return &NegotiationError{Op: op, Status: resp.StatusCode, Blocked: cloudflare, Detail: "an HTML page, not JSON"}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &NegotiationError{Op: op, Status: resp.StatusCode, Detail: "bad JSON answer: " + err.Error()}
	}
	return nil
}

// answerMessage is the "message" of a JSON error answer, else the status text.
func answerMessage(raw []byte, status int) string {
	var e struct {
		Message kickjson.String `json:"message"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Message != "" {
		return kickjson.Text(string(e.Message[:min(len(e.Message), 200)]))
	}
	return strings.ToLower(http.StatusText(status))
}

// tokenExpiry reads the exp claim of a JWT without verifying it (the
// server verifies; kickmon only schedules and reports); zero when absent.
func tokenExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp kickjson.Int `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(c.Exp), 0)
}

// newUUID returns a random (version 4) UUID, as kick.com's pages make one.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// PusherURL builds the Pusher URL of a negotiated key and cluster from the
// configured template (KICK_PUSHER_URL): the /app/{key} path segment takes
// the key, and only when the template's host is ws-*.pusher.com does the
// host become ws-{cluster}.pusher.com (kicksim keeps its own host).
func PusherURL(template, key, cluster string) (string, error) {
	u, err := url.Parse(template)
	if err != nil {
		return "", fmt.Errorf("pusher URL template: %w", err)
	}
	segs := strings.Split(u.Path, "/")
	found := false
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == "app" {
			segs[i+1] = url.PathEscape(key)
			found = true
			break
		}
	}
	if !found {
		return "", fmt.Errorf("pusher URL template %q has no /app/{key} segment", u.Redacted())
	}
	u.Path, u.RawPath = strings.Join(segs, "/"), ""
	host := u.Hostname()
	if cluster != "" && strings.HasPrefix(host, "ws-") && strings.HasSuffix(host, ".pusher.com") && validCluster(cluster) {
		h := "ws-" + cluster + ".pusher.com"
		if p := u.Port(); p != "" {
			h += ":" + p
		}
		u.Host = h
	}
	return u.String(), nil
}

// validCluster accepts what a Pusher cluster name looks like (us2, eu, mt1).
func validCluster(c string) bool {
	if len(c) > 16 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// CheckURL refuses a URL whose scheme is not secure unless insecure is
// allowed (KICKMON_ALLOW_INSECURE): a negotiated URL must obey the same
// rule as a configured one.
func CheckURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q: not an absolute URL", raw)
	}
	switch u.Scheme {
	case "wss", "https":
		return nil
	case "ws", "http":
		if allowInsecure {
			return nil
		}
		return fmt.Errorf("%s: %s is refused without KICKMON_ALLOW_INSECURE=true", u.Redacted(), u.Scheme)
	}
	return fmt.Errorf("%s: scheme %q is not ws(s) or http(s)", u.Redacted(), u.Scheme)
}
