package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/kicksim"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runUntilEnv runs kicksim until it has printed its environment, then stops it.
func runUntilEnv(t *testing.T, args ...string) string {
	t.Helper()
	return runWithEnv(t, nil, args...)
}

// runWithEnv runs kicksim until it has printed its environment, calls
// during with the output (if not nil), then stops it.
func runWithEnv(t *testing.T, during func(out string), args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	env := map[string]string{"KICKSIM_CLIENT_ID": "id1", "KICKSIM_CLIENT_SECRET": "s1"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "KICKMON_STREAMERS=") {
		if time.Now().After(deadline) {
			t.Fatalf("no env printed: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if during != nil {
		during(out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String()
}

// A world too large for one variable still ends with the line readers wait for.
func TestRunLargeWorldEndsWithStreamersLine(t *testing.T) {
	out := runUntilEnv(t, "--streamers", "20000")
	if !strings.HasSuffix(out, "KICKMON_STREAMERS=\n") || !strings.Contains(out, "add streamers with kickctl") {
		t.Errorf("output of a 20000-streamer world ends %q", out[max(0, len(out)-200):])
	}
}

// --realtime and --realtime-token-ttl reach the sim: negotiation at
// KICK_WEB_URL offers only Centrifugo at KICK_CENTRIFUGO_URL, and tokens
// live 10 s.
func TestRunRealtimeFlags(t *testing.T) {
	runWithEnv(t, func(out string) {
		var web, cf string
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "KICK_WEB_URL="); ok {
				web = v
			}
			if v, ok := strings.CutPrefix(l, "KICK_CENTRIFUGO_URL="); ok {
				cf = v
			}
		}
		var neg kicksim.NegotiationResponse
		post(t, web+"/api/v1/realtime/connection", `{"client":{"id":"c1","type":"web"},"capabilities":{"accepted_providers":[{"provider":"pusher"},{"provider":"centrifugo"}]}}`, &neg)
		if c := neg.Data.Connections; len(c) != 1 || c[0].Provider != kicksim.ProviderCentrifugo || c[0].Credentials.URL != cf || cf == "" {
			t.Errorf("negotiation offers %+v, want only centrifugo at %q", c, cf)
		}
		var tok kicksim.TokenResponse
		post(t, web+"/api/v1/realtime/auth/connection", `{"client_id":"c1"}`, &tok)
		parts := strings.Split(tok.Data.Token, ".")
		var claims struct{ Iat, Exp int64 }
		if b, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)]); err != nil || json.Unmarshal(b, &claims) != nil || claims.Exp-claims.Iat != 10 {
			t.Errorf("token %q: want a JWT living 10 s (%v)", tok.Data.Token, err)
		}
	}, "--streamers", "2", "--realtime", "centrifugo", "--centrifugo-ping", "2s", "--realtime-token-ttl", "10s")
}

func post(t *testing.T, url, body string, v any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
}

func TestRunPrintsEnvAndStops(t *testing.T) {
	out := runUntilEnv(t, "--streamers", "3", "--rate", "5")
	for _, want := range []string{"KICK_AUTH_URL=http://127.0.0.1:", "KICK_API_URL=http://127.0.0.1:", "KICK_PUSHER_URL='ws://127.0.0.1:",
		"/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false'\n", "KICK_CLIENT_ID=id1\n", "KICK_CLIENT_SECRET=s1\n",
		"KICKMON_ALLOW_INSECURE=true\n", "KICKSIM_CONTROL_URL=http://127.0.0.1:",
		"KICK_WEB_URL=http://127.0.0.1:", "/connection/websocket\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--streamers", "0"},
		{"--listen", "256.0.0.1:1"},
		{"--log-level", "loud"},
		{"--realtime", "auto"},
		{"--centrifugo-ping", "0s"},
		{"--realtime-token-ttl", "-1s"},
		{"extra"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	if err := run(context.Background(), nil, func(k string) string {
		if k == "KICKSIM_CLIENT_ID" {
			return "only-id"
		}
		return ""
	}, io.Discard, io.Discard); err == nil {
		t.Error("half credentials accepted")
	}
}
