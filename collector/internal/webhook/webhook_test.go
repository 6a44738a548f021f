package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Kick's real test vector (kick-api.md §1.10.5; Bukk94/KickLib
// KickLib.Tests/EventParserTests.cs and
// KickLib.Tests/Data/WebhookPayloads/ValidationPayload.json).
const (
	vectorMessageID = "01JQR5KV0QC94HMETWYNBWRW4Z"
	vectorTimestamp = "2025-04-01T07:56:19Z"
	vectorSignature = "fpZCxfE8lojfMhDPvSpmEjHbJH4+6OFVSLStKgiTxH7QXQw/M3sdWWl0o/pxBz0vA9xXP8x3l+z7WNkT3C+6K7MkEZBtvv+88IAgWyJ2uTLKJtuFn5FIIQKTv1tAqOeFIp1A56DJR9eJ/yzG+flj9RwSNcvMPXBHS3X5jisBiKhYrqUUAW6HYuYKMq5cTcxb1IX0hyN5jEkFv2BuWAIlriyVztdXBX1aHENBxCSf1qbFzQ26VCaZNCOGPpLS+4kHzuU8Zkju+o4nAUm+DIC8c1CjYfPIwu/tZb2HPGklXt1ZMQXpnP+F/Oo+NaW8Z0fBl1ZG8wanIVjPClkoDR4QZQ=="
	vectorBody      = `{"broadcaster":{"is_anonymous":false,"user_id":4809577,"username":"FusedChat","is_verified":null,"profile_picture":"https://files.kick.com/images/user/4809577/profile_image/conversion/9028f795-f3ef-42dc-9cfc-7cb7ba6f32fa-medium.webp","channel_slug":"fusedchat"},"is_live":true,"title":"Multiplatform bot!","started_at":"2025-04-01T07:56:18Z","ended_at":null}`
)

// vectorClock is 11 s after the vector's timestamp.
func vectorClock() time.Time { return time.Date(2025, 4, 1, 7, 56, 30, 0, time.UTC) }

// delivery is one POST to the receiver.
type delivery struct {
	msgID, ts, sig, event string
	body                  []byte
}

func vector() delivery {
	return delivery{msgID: vectorMessageID, ts: vectorTimestamp, sig: vectorSignature, event: EventStatusUpdated, body: []byte(vectorBody)}
}

// receiver is a Handler served on a real loopback socket.
type receiver struct {
	t   *testing.T
	h   *Handler
	url string
	out chan observation.Observation
}

func startReceiver(t *testing.T, o Options) *receiver {
	t.Helper()
	out := make(chan observation.Observation, 100)
	o.Out, o.Logger = out, logtest.New(t)
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &receiver{t: t, h: h, url: "http://" + ln.Addr().String() + Path, out: out}
}

func (r *receiver) post(d delivery) int {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(d.body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Close = true // no idle keep-alive connections left for goleak
	req.Header.Set("Content-Type", "application/json")
	for k, v := range map[string]string{HeaderMessageID: d.msgID, HeaderTimestamp: d.ts, HeaderSignature: d.sig, HeaderEventType: d.event, HeaderEventVersion: "1"} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// emitted drains what the handler emitted (it emits before answering).
func (r *receiver) emitted() []observation.Observation {
	var out []observation.Observation
	for {
		select {
		case o := <-r.out:
			out = append(out, o)
		default:
			return out
		}
	}
}

var ignoreObserved = cmpopts.IgnoreFields(observation.Observation{}, "ObservedAt")

func vectorObservation() observation.Observation {
	started := time.Date(2025, 4, 1, 7, 56, 18, 0, time.UTC)
	return observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_WEBHOOK, UserID: 4809577, Slug: "fusedchat",
		Live: observation.Live, StartedAt: started, KickTime: started, HasTitle: true, Title: "Multiplatform bot!"}
}

// failingKeys is a KeySource that cannot reach Kick.
type failingKeys struct{}

func (failingKeys) PublicKey(context.Context) (string, error) {
	return "", errors.New("connection refused")
}

func TestKickTestVector(t *testing.T) {
	if err := Verify(documentedKey, vectorMessageID, vectorTimestamp, []byte(vectorBody), vectorSignature); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, keys := range map[string]KeySource{"documented key": nil, "fallback after a failed fetch": failingKeys{}} {
		t.Run(name, func(t *testing.T) {
			r := startReceiver(t, Options{Now: vectorClock, Keys: keys})
			if code := r.post(vector()); code != http.StatusOK {
				t.Fatalf("status %d; want 200", code)
			}
			got := r.emitted()
			if diff := cmp.Diff([]observation.Observation{vectorObservation()}, got, ignoreObserved); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRejectionsChangeNothing(t *testing.T) {
	flipped := []byte(vectorSignature)
	flipped[10] ^= 'A' ^ 'B'
	tests := []struct {
		name   string
		now    func() time.Time
		mutate func(*delivery)
		method string
		want   int
	}{
		{name: "bad signature", mutate: func(d *delivery) { d.sig = string(flipped) }, want: http.StatusUnauthorized},
		{name: "signature not base64", mutate: func(d *delivery) { d.sig = "%%%" }, want: http.StatusUnauthorized},
		{name: "body altered", mutate: func(d *delivery) {
			d.body = bytes.Replace(d.body, []byte(`"is_live":true`), []byte(`"is_live":false`), 1)
		}, want: http.StatusUnauthorized},
		{name: "message id altered", mutate: func(d *delivery) { d.msgID = "01JQR5KV0QC94HMETWYNBWRW50" }, want: http.StatusUnauthorized},
		{name: "stale timestamp", now: func() time.Time { return vectorClock().Add(5 * time.Minute) }, want: http.StatusBadRequest},
		{name: "timestamp in the future", now: func() time.Time { return vectorClock().Add(-6 * time.Minute) }, want: http.StatusBadRequest},
		{name: "bad timestamp", mutate: func(d *delivery) { d.ts = "yesterday" }, want: http.StatusBadRequest},
		{name: "missing signature", mutate: func(d *delivery) { d.sig = "" }, want: http.StatusBadRequest},
		{name: "missing message id", mutate: func(d *delivery) { d.msgID = "" }, want: http.StatusBadRequest},
		{name: "oversize body", mutate: func(d *delivery) { d.body = bytes.Repeat([]byte(" "), DefaultMaxBodyBytes+1) }, want: http.StatusRequestEntityTooLarge},
		{name: "GET", method: http.MethodGet, want: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now == nil {
				now = vectorClock
			}
			r := startReceiver(t, Options{Now: now})
			d := vector()
			if tt.mutate != nil {
				tt.mutate(&d)
			}
			var code int
			if tt.method != "" {
				req, err := http.NewRequest(http.MethodGet, r.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Close = true
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				code = resp.StatusCode
			} else {
				code = r.post(d)
			}
			if code != tt.want {
				t.Errorf("status %d; want %d", code, tt.want)
			}
			if got := r.emitted(); len(got) != 0 {
				t.Errorf("emitted %+v; want nothing", got)
			}
			// The genuine delivery still counts afterwards: a rejection
			// does not poison the message id.
			if code := r.post(vector()); code != http.StatusOK && tt.now == nil {
				t.Errorf("genuine delivery after the rejection: status %d", code)
			}
		})
	}
}

func TestDuplicateIgnored(t *testing.T) {
	r := startReceiver(t, Options{Now: vectorClock})
	for i, want := range []int{1, 0, 0} {
		if code := r.post(vector()); code != http.StatusOK {
			t.Fatalf("delivery %d: status %d; want 200", i, code)
		}
		if got := len(r.emitted()); got != want {
			t.Errorf("delivery %d emitted %d observations; want %d", i, got, want)
		}
	}
	if s := r.h.Stats(); s.Accepted != 1 || s.Duplicates != 2 {
		t.Errorf("stats %+v; want 1 accepted, 2 duplicates", s)
	}
}

// rotatingKeys serves one PEM, changeable at run time.
type rotatingKeys struct {
	mu      sync.Mutex
	pem     string
	fetches int
}

func (k *rotatingKeys) PublicKey(context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fetches++
	return k.pem, nil
}

func (k *rotatingKeys) set(p string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pem = p
}

func newKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sign(t *testing.T, k *rsa.PrivateKey, msgID string, at time.Time, body string) delivery {
	t.Helper()
	ts := at.UTC().Format(time.RFC3339)
	sum := sha256.Sum256([]byte(msgID + "." + ts + "." + body))
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return delivery{msgID: msgID, ts: ts, sig: base64.StdEncoding.EncodeToString(sig), event: EventStatusUpdated, body: []byte(body)}
}

func TestKeyRotation(t *testing.T) {
	keyA, pemA := newKey(t)
	keyB, pemB := newKey(t)
	src := &rotatingKeys{pem: pemA}
	var mu sync.Mutex
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := startReceiver(t, Options{Now: clock, Keys: src})
	body := `{"broadcaster":{"user_id":7},"is_live":false,"title":"t","started_at":"2026-11-01T10:00:00Z","ended_at":"2026-11-01T11:59:00Z"}`

	steps := []struct {
		name string
		key  *rsa.PrivateKey
		id   string
		want int
	}{
		{"signed with the fetched key", keyA, "m1", http.StatusOK},
		{"rotated key within a minute of the last fetch", keyB, "m2", http.StatusUnauthorized},
		{"rotated key a minute later is fetched", keyB, "m3", http.StatusOK},
		{"old key no longer verifies", keyA, "m4", http.StatusUnauthorized},
	}
	for i, st := range steps {
		if i == 1 {
			src.set(pemB)
		}
		if i == 2 {
			mu.Lock()
			now = now.Add(2 * time.Minute)
			mu.Unlock()
		}
		if code := r.post(sign(t, st.key, st.id, clock(), body)); code != st.want {
			t.Errorf("%s: status %d; want %d", st.name, code, st.want)
		}
	}
	if got := len(r.emitted()); got != 2 {
		t.Errorf("emitted %d observations; want 2", got)
	}
}

func TestDecode(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_WEBHOOK, UserID: 123456789, Slug: "broadcaster_channel"}
	with := func(f func(*observation.Observation)) observation.Observation {
		o := base
		f(&o)
		return o
	}
	const b = `"broadcaster":{"is_anonymous":false,"user_id":123456789,"username":"broadcaster_name","is_verified":true,"profile_picture":"https://example.com/broadcaster_avatar.jpg","channel_slug":"broadcaster_channel","identity":null}`
	tests := []struct {
		name, event, body string
		want              observation.Observation
		ok, wantErr       bool
	}{
		{"status started (documented)", EventStatusUpdated, `{` + b + `,"is_live":true,"title":"Stream Title","started_at":"2025-01-01T11:00:00+11:00","ended_at":null}`,
			with(func(o *observation.Observation) {
				o.Live, o.StartedAt, o.KickTime, o.HasTitle, o.Title = observation.Live, at("2025-01-01T11:00:00+11:00"), at("2025-01-01T11:00:00+11:00"), true, "Stream Title"
			}), true, false},
		{"status ended (documented)", EventStatusUpdated, `{` + b + `,"is_live":false,"title":"Stream Title","started_at":"2025-01-01T11:00:00+11:00","ended_at":"2025-01-01T15:00:00+11:00"}`,
			with(func(o *observation.Observation) {
				o.Live, o.StartedAt, o.EndedAt, o.KickTime, o.HasTitle, o.Title = observation.Offline, at("2025-01-01T11:00:00+11:00"), at("2025-01-01T15:00:00+11:00"), at("2025-01-01T15:00:00+11:00"), true, "Stream Title"
			}), true, false},
		{"metadata (documented)", EventMetadataUpdated, `{` + b + `,"metadata":{"title":"Stream Title","language":"en","has_mature_content":true,"category":{"id":123,"name":"Category name","thumbnail":"http://example.com/image123"}}}`,
			with(func(o *observation.Observation) {
				o.HasTitle, o.Title, o.HasCategory, o.CategoryID, o.CategoryName = true, "Stream Title", true, 123, "Category name"
			}), true, false},
		{"user id as a string", EventMetadataUpdated, `{"broadcaster":{"user_id":"123456789","channel_slug":"broadcaster_channel"},"metadata":{}}`, base, true, false},
		{"other event", "chat.message.sent", `{}`, observation.Observation{}, false, false},
		{"no user id", EventStatusUpdated, `{"broadcaster":{},"is_live":true}`, observation.Observation{}, false, true},
		{"no is_live", EventStatusUpdated, `{` + b + `}`, observation.Observation{}, false, true},
		{"bad started_at", EventStatusUpdated, `{` + b + `,"is_live":true,"started_at":"soon"}`, observation.Observation{}, false, true},
		{"not JSON", EventStatusUpdated, `<html>`, observation.Observation{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := Decode(tt.event, []byte(tt.body))
			if (err != nil) != tt.wantErr || ok != tt.ok {
				t.Fatalf("Decode: ok %v, err %v; want ok %v, error %v", ok, err, tt.ok, tt.wantErr)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDedupBounds(t *testing.T) {
	d := newDedup(3, time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		id   string
		at   time.Duration
		want bool
	}{
		{"a", 0, true}, {"a", time.Second, false}, {"b", 0, true}, {"c", 0, true},
		{"d", 0, true},               // evicts a (size 3)
		{"a", 2 * time.Second, true}, // a was evicted
		{"b", 2 * time.Minute, true}, // everything expired
	}
	for i, st := range steps {
		if got := d.claim(st.id, t0.Add(st.at)); got != st.want {
			t.Errorf("step %d: claim(%s) = %v; want %v", i, st.id, got, st.want)
		}
		if n := d.len(); n > 3 {
			t.Errorf("step %d: %d ids remembered; bound is 3", i, n)
		}
	}
	if n := d.len(); n != 1 {
		t.Errorf("%d ids after expiry; want 1", n)
	}
}

// A delivery whose observation nobody takes (the engine has stopped) must
// not keep its handler past Serve: after the grace period the connection is
// closed, and the message id is forgotten so Kick's redelivery counts.
func TestServeEndsBlockedHandler(t *testing.T) {
	h, err := NewHandler(Options{Out: make(chan observation.Observation), Now: vectorClock, Logger: logtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	h.shutdownGrace = 50 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, ln, nil) }()

	d := vector()
	req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+Path, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{HeaderMessageID: d.msgID, HeaderTimestamp: d.ts, HeaderSignature: d.sig, HeaderEventType: d.event} {
		req.Header.Set(k, v)
	}
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		client := &http.Client{Timeout: 3 * waitTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	testwait.For(t, waitTimeout, "the delivery claimed", func() bool { return h.seen.len() == 1 })

	cancel()
	select {
	case <-served:
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
	}
	select {
	case <-posted:
	case <-time.After(waitTimeout):
		t.Fatal("the blocked delivery was never answered")
	}
	testwait.For(t, waitTimeout, "the message id released", func() bool { return h.seen.len() == 0 })
}
