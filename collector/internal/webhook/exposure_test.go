package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/observation"
)

// syncBuffer is a log sink safe for the server's goroutines.
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

// serveOn serves a handler logging into logs on addr until the test ends
// and returns its address.
func serveOn(t *testing.T, addr string, level slog.Level, logs *syncBuffer, tlsFiles *TLSFiles) (*Handler, string) {
	t.Helper()
	h, err := NewHandler(Options{Out: make(chan observation.Observation, 10), Now: vectorClock,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ln, tlsFiles) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h, ln.Addr().String()
}

// TestRejectionsAreQuiet: anyone can post to the receiver, so rejections
// are not logged at info (a flood would fill the journal) and the message
// id is cut short even at debug; the counters say what happened.
func TestRejectionsAreQuiet(t *testing.T) {
	hugeID := strings.Repeat("A", 15<<10)
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			logs := &syncBuffer{}
			h, addr := serveOn(t, "127.0.0.1:0", level, logs, nil)
			r := &receiver{t: t, h: h, url: "http://" + addr + Path}
			d := vector()
			d.msgID = hugeID
			for range 20 {
				if code := r.post(d); code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", code)
				}
			}
			if got := h.Stats().BadSig; got != 20 {
				t.Errorf("bad signatures counted %d, want 20", got)
			}
			out := logs.String()
			if strings.Contains(out, strings.Repeat("A", maxLoggedID+1)) {
				t.Errorf("the logs carry the attacker's message id in full (%d bytes of logs)", len(out))
			}
			rejections := strings.Count(out, "webhook rejected")
			if level == slog.LevelInfo && rejections != 0 {
				t.Errorf("%d rejections logged at info", rejections)
			}
			if level == slog.LevelDebug && rejections != 20 {
				t.Errorf("%d rejections logged at debug, want 20", rejections)
			}
		})
	}
}

// TestPlainHTTPWarning: listening beyond loopback without TLS is warned
// about; loopback (behind a proxy) and TLS are not.
func TestPlainHTTPWarning(t *testing.T) {
	cert, key, _ := selfSigned(t)
	tests := []struct {
		name, addr string
		tls        *TLSFiles
		warn       bool
	}{
		{"loopback", "127.0.0.1:0", nil, false},
		{"all addresses", "0.0.0.0:0", nil, true},
		{"all addresses with TLS", "0.0.0.0:0", &TLSFiles{Cert: cert, Key: key}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			serveOn(t, tt.addr, slog.LevelInfo, logs, tt.tls)
			// Serve logs "listening" after the check: wait for it.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "webhook receiver listening") {
				if time.Now().After(deadline) {
					t.Fatalf("receiver never said it listens; logs: %s", logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := strings.Contains(logs.String(), "without TLS"); got != tt.warn {
				t.Errorf("warning %v, want %v; logs: %s", got, tt.warn, logs.String())
			}
		})
	}
}

// TestServesTLS: with KICKMON_WEBHOOK_TLS_CERT/_KEY the receiver speaks
// HTTPS itself: a genuine delivery over TLS counts; plain HTTP does not.
func TestServesTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	logs := &syncBuffer{}
	h, addr := serveOn(t, "127.0.0.1:0", slog.LevelDebug, logs, &TLSFiles{Cert: cert, Key: key})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	d := vector()
	req, err := http.NewRequest(http.MethodPost, "https://"+addr+Path, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{HeaderMessageID: d.msgID, HeaderTimestamp: d.ts, HeaderSignature: d.sig, HeaderEventType: d.event} {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("HTTPS delivery: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || h.Stats().Accepted != 1 {
		t.Errorf("HTTPS delivery: status %d, accepted %d", resp.StatusCode, h.Stats().Accepted)
	}
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := plain.Post("http://"+addr+Path, "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest { // Go's answer to plain HTTP on a TLS port
			t.Errorf("plain HTTP on the TLS port: status %d", resp.StatusCode)
		}
	}
	if h.Stats().BadRequest != 0 {
		t.Error("a plain HTTP request reached the handler")
	}
}

// selfSigned writes a throwaway certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kickmon test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
