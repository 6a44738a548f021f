package kicksim

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// envelope is the success and error envelope of api.kick.com:
// {"data":…,"message":"OK"} (kick-api.md §1.4).
type envelope struct {
	Data    any    `json:"data"`
	Message string `json:"message"`
}

// oauthError is the error shape of id.kick.com (kick-api.md §1.4).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Message     string `json:"message"`
}

// tokenResponse is the client-credentials answer (kick-api.md §1.2).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// marshal encodes v as JSON without escaping <, > and & (Kick payloads carry
// them literally, e.g. "Slots & Casino").
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("kicksim: marshal: " + err.Error()) // only our own types are encoded
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(marshal(v))
}

// writeUnauthorized writes the 401 of api.kick.com:
// {"data":{},"message":"Unauthorized"}.
func writeUnauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, envelope{Data: struct{}{}, Message: "Unauthorized"})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tokens are the issued app access tokens.
type tokens struct {
	mu     sync.Mutex
	ttl    time.Duration
	now    func() time.Time
	exp    map[string]time.Time
	issued int
}

func newTokens(ttl time.Duration, now func() time.Time) *tokens {
	return &tokens{ttl: ttl, now: now, exp: make(map[string]time.Time)}
}

// tokenEncoding renders tokens like Kick's: upper-case base32 letters and
// digits, 48 characters.
var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (t *tokens) issue() (string, time.Duration) {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	tok := tokenEncoding.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.issued++
	if t.issued%64 == 0 {
		for k, e := range t.exp {
			if !now.Before(e) {
				delete(t.exp, k)
			}
		}
	}
	t.exp[tok] = now.Add(t.ttl)
	return tok, t.ttl
}

func (t *tokens) valid(tok string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.exp[tok]
	return ok && t.now().Before(e)
}

func (t *tokens) revokeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.exp)
}

// RevokeTokens invalidates every issued token; the next API call with one
// gets 401 {"data":{},"message":"Unauthorized"}.
func (s *Sim) RevokeTokens() {
	s.log.Info("all tokens revoked")
	s.tokens.revokeAll()
}

// IssueToken issues a valid app token without an HTTP round trip.
func (s *Sim) IssueToken() string {
	tok, _ := s.tokens.issue()
	return tok
}

// handleToken serves POST /oauth/token (client credentials only).
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, EndpointToken) {
		return
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if strings.TrimSpace(strings.ToLower(ct)) != "application/x-www-form-urlencoded" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid request"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid request"})
		return
	}
	grant, id, secret := r.PostForm.Get("grant_type"), r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	switch {
	case grant == "" || id == "" || secret == "":
		// The documented 400 (kick-api.md §1.2).
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid request"})
	case grant != "client_credentials":
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type", Description: "The authorization grant type is not supported by the authorization server.", Message: "The authorization grant type is not supported by the authorization server."})
	case id != s.o.clientID || secret != s.o.clientSecret:
		s.log.Debug("token refused: bad client credentials")
		writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "Client authentication failed", Message: "Client authentication failed"})
	default:
		tok, ttl := s.tokens.issue()
		writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: max(1, int64(math.Ceil(ttl.Seconds())))})
	}
}
