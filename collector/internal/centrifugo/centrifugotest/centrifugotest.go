// Package centrifugotest starts a real Centrifugo server
// (github.com/centrifugal/centrifugo/v6, the binary `make centrifugo`
// installs into .tools/bin) for tests: configured with its JSON config (an
// HMAC secret for connection tokens, subscriptions allowed to clients on
// namespace-less channels such as "channel.123", short pings), with
// helpers to mint tokens and to publish and disconnect through its HTTP
// server API.
package centrifugotest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Version is the Centrifugo release the Makefile installs (keep in step
// with CENTRIFUGO_VERSION there).
const Version = "v6.9.1"

// Server is a running Centrifugo.
type Server struct {
	// URL is the client WebSocket endpoint (ws://…/connection/websocket).
	URL    string
	api    string
	apiKey string
	secret []byte
	logs   *output
}

// output is the server's output, written by exec's copying goroutines.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Options tune the server.
type Options struct {
	// AllowedOrigins are the Origins accepted (default: https://kick.com,
	// which Centrifugo checks when a client sends one).
	AllowedOrigins []string
	// PingInterval and PongTimeout of the server's {} pings (default 2s, 1s).
	PingInterval, PongTimeout time.Duration
}

// Binary returns the path of the centrifugo binary, or fails t naming the
// make target that installs it.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KICKMON_CENTRIFUGO_BIN"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("centrifugotest: cannot find the repository root (go.work) above the test's directory")
		}
		dir = parent
	}
	bin := filepath.Join(dir, ".tools", "bin", "centrifugo")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("centrifugotest: the Centrifugo server %s is missing (%v): run `make centrifugo` (or `make deps`) at the repository root to install github.com/centrifugal/centrifugo/v6@%s", bin, err, Version)
	}
	return bin
}

// Start runs a Centrifugo server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	if len(o.AllowedOrigins) == 0 {
		o.AllowedOrigins = []string{"https://kick.com"}
	}
	if o.PingInterval == 0 {
		o.PingInterval, o.PongTimeout = 2*time.Second, time.Second
	}
	port := freePort(t)
	s := &Server{apiKey: "test-api-key", secret: []byte("test-hmac-secret-for-kickmon"), logs: new(output)}
	cfg := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "info"},
		"client": map[string]any{
			"token":               map[string]any{"hmac_secret_key": string(s.secret)},
			"allowed_origins":     o.AllowedOrigins,
			"ping_interval":       o.PingInterval.String(),
			"pong_timeout":        o.PongTimeout.String(),
			"expired_close_delay": "1s",
		},
		"channel":  map[string]any{"without_namespace": map[string]any{"allow_subscribe_for_client": true, "presence": true}},
		"http_api": map[string]any{"key": s.apiKey},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", path)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("centrifugotest: start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned: Cleanup waits for it
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("centrifugo output:\n%s", s.logs.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	s.URL = "ws://127.0.0.1:" + strconv.Itoa(port) + "/connection/websocket"
	s.api = base + "/api"
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.call("info", map[string]any{}, nil); err == nil {
			return s
		}
		select {
		case err := <-exited:
			t.Fatalf("centrifugotest: centrifugo exited: %v\n%s", err, s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("centrifugotest: centrifugo did not answer on %s within a minute\n%s", base, s.logs.String())
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// Token mints an HS256 connection token for user sub, valid for ttl.
func (s *Server) Token(sub string, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": sub, "exp": time.Now().Add(ttl).Unix()})
	msg := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// Publish publishes data (a JSON value) on channel through the server API.
func (s *Server) Publish(channel string, data any) error {
	return s.call("publish", map[string]any{"channel": channel, "data": data}, nil)
}

// Disconnect disconnects user's connections with a close code.
func (s *Server) Disconnect(user string, code int, reason string) error {
	return s.call("disconnect", map[string]any{"user": user, "disconnect": map[string]any{"code": code, "reason": reason}}, nil)
}

// Subscribers returns how many clients are subscribed to channel.
func (s *Server) Subscribers(channel string) (int, error) {
	var r struct {
		Result struct {
			NumClients int `json:"num_clients"`
		} `json:"result"`
	}
	err := s.call("presence_stats", map[string]any{"channel": channel}, &r)
	return r.Result.NumClients, err
}

// Logs returns the server's output so far.
func (s *Server) Logs() string { return s.logs.String() }

// call posts one server API command.
func (s *Server) call(method string, params, out any) error {
	b, err := json.Marshal(params)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, s.api+"/"+method, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("centrifugo api %s: %s: %s", method, resp.Status, body)
	}
	var e struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		return fmt.Errorf("centrifugo api %s: error %d %s", method, e.Error.Code, e.Error.Message)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}
