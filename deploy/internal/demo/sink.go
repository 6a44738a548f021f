package demo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// sink is the demo's local webhook receiver for kicknotify: it checks each
// delivery's signature, keeps one line per distinct idempotency key, and
// writes it to out as it arrives.
type sink struct {
	secret []byte
	srv    *http.Server
	url    string

	mu    sync.Mutex
	out   io.Writer
	seen  map[string]bool
	lines []string
}

func startSink(out io.Writer) (*sink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	s := &sink{secret: []byte(fmt.Sprintf("demo-%d", time.Now().UnixNano())), out: out, seen: map[string]bool{},
		url: "http://" + lis.Addr().String() + "/kickmon"}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write(body)
	if !hmac.Equal([]byte(r.Header.Get("X-Kickmon-Signature")), []byte(hex.EncodeToString(m.Sum(nil)))) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e kickmonv1.Event
	if err := protojson.Unmarshal(body, &e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := r.Header.Get("X-Kickmon-Delivery")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen[key] { // a retry of a delivery already shown
		s.seen[key] = true
		st := e.GetStreamer()
		line := fmt.Sprintf("kickdemo: notification %-16s %-9s %s: %q (%s)", key, r.Header.Get("X-Kickmon-Kind"), st.GetSlug(), st.GetTitle(), st.GetCategoryName())
		s.lines = append(s.lines, line)
		fmt.Fprintln(s.out, line)
	}
	w.WriteHeader(http.StatusNoContent)
}

// config writes kicknotify's notify.yaml (and the secret) into dir.
func (s *sink) config(dir string) (string, error) {
	secret := filepath.Join(dir, "sink-secret")
	if err := os.WriteFile(secret, s.secret, 0o600); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "notify.yaml")
	yaml := fmt.Sprintf(`targets:
  - name: demo-sink
    type: webhook
    url: %s
    secret_file: %s
    events: [live, offline]
`, s.url, secret)
	return path, os.WriteFile(path, []byte(yaml), 0o600)
}

// setOutput sends further lines to w.
func (s *sink) setOutput(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = w
}

// received returns the lines shown so far.
func (s *sink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *sink) close() { _ = s.srv.Close() }
