package kicksim

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// verifyKickSignature is the documented check (kick-api.md §1.10.5): RSA
// PKCS#1 v1.5 with SHA-256 over messageID + "." + timestamp + "." + body,
// base64 in Kick-Event-Signature.
func verifyKickSignature(pub *rsa.PublicKey, messageID, timestamp string, body []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	sum := sha256.Sum256([]byte(messageID + "." + timestamp + "." + string(body)))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}

func parsePublicKey(t testing.TB, pemText []byte) *rsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode(pemText)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("no PUBLIC KEY block in %q", pemText)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse public key: %v", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("not an RSA 2048 key: %T", k)
	}
	return pub
}

func TestKickTestVectorVerifies(t *testing.T) {
	body := readFixture(t, "ValidationPayload.json")
	if len(body) != 358 {
		t.Fatalf("ValidationPayload.json is %d bytes, want 358", len(body))
	}
	var h map[string]string
	mustUnmarshal(t, readFixture(t, "ValidationPayload.headers.json"), &h)
	pub := parsePublicKey(t, readFixture(t, "kick_public_key.pem"))
	if err := verifyKickSignature(pub, h[HeaderMessageID], h[HeaderTimestamp], body, h[HeaderSignature]); err != nil {
		t.Fatalf("Kick's test vector does not verify: %v", err)
	}
	tampered := bytes.Replace(body, []byte(`"is_live":true`), []byte(`"is_live":false`), 1)
	if err := verifyKickSignature(pub, h[HeaderMessageID], h[HeaderTimestamp], tampered, h[HeaderSignature]); err == nil {
		t.Fatal("tampered body verifies")
	}
}

// webhookSink records deliveries.
type webhookSink struct {
	mu     sync.Mutex
	got    []delivered
	status int // answer; 0 = 200
	srv    *httptest.Server
}

type delivered struct {
	header http.Header
	body   []byte
}

func newWebhookSink(t testing.TB) *webhookSink {
	s := &webhookSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, delivered{r.Header.Clone(), b})
		status := s.status
		s.mu.Unlock()
		if status == 0 {
			status = 200
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *webhookSink) url() string { return s.srv.URL + "/webhooks/kick" }

func (s *webhookSink) all() []delivered {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivered(nil), s.got...)
}

func (s *webhookSink) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func subscribeWebhooks(t testing.TB, c *apiClient, userID int64, events ...string) []subscribeResult {
	t.Helper()
	req := map[string]any{"broadcaster_user_id": userID, "method": "webhook"}
	var evs []map[string]any
	for _, e := range events {
		evs = append(evs, map[string]any{"name": e, "version": 1})
	}
	req["events"] = evs
	r := c.send(http.MethodPost, "/public/v1/events/subscriptions", req)
	if r.status != 200 {
		t.Fatalf("subscribe: %v", r)
	}
	var env struct{ Data []subscribeResult }
	mustUnmarshal(t, r.body, &env)
	return env.Data
}

var ulidRE = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)

func TestWebhookDeliveries(t *testing.T) {
	sink := newWebhookSink(t)
	sim := startSim(t, WithStreamers(3), WithWebhookURL(sink.url()))
	c := newAPIClient(t, sim)
	st := sim.Streamers()[0]
	subs := subscribeWebhooks(t, c, st.UserID, WebhookStatusUpdated, WebhookMetadataUpdated, "no.such.event")
	if subs[0].Error != "" || subs[1].Error != "" || subs[2].Error == "" || !ulidRE.MatchString(subs[0].SubscriptionID) {
		t.Fatalf("subscribe results %+v", subs)
	}
	again := subscribeWebhooks(t, c, st.UserID, WebhookStatusUpdated)
	if again[0].SubscriptionID != subs[0].SubscriptionID {
		t.Errorf("resubscribing made a new subscription %s", again[0].SubscriptionID)
	}

	pubResp := c.get("/public/v1/public-key", nil)
	var pk struct {
		Data struct {
			PublicKey string `json:"public_key"`
		}
	}
	mustUnmarshal(t, pubResp.body, &pk)
	pub := parsePublicKey(t, []byte(pk.Data.PublicKey))

	if err := sim.GoLive(st.UserID); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetTitle(st.UserID, "new title"); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetViewers(st.UserID, 5); err != nil { // no webhook for viewers
		t.Fatal(err)
	}
	if err := sim.GoOffline(st.UserID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "3 deliveries", func() bool { return len(sink.all()) >= 3 })
	got := sink.all()
	if len(got) != 3 {
		t.Fatalf("%d deliveries, want 3", len(got))
	}
	truth := sim.Truth()
	live := truth[0]
	wantTypes := []string{WebhookStatusUpdated, WebhookMetadataUpdated, WebhookStatusUpdated}
	for i, d := range got {
		h := d.header
		if err := verifyKickSignature(pub, h.Get(HeaderMessageID), h.Get(HeaderTimestamp), d.body, h.Get(HeaderSignature)); err != nil {
			t.Errorf("delivery %d: signature: %v", i, err)
		}
		if h.Get(HeaderEventType) != wantTypes[i] || h.Get(HeaderEventVersion) != "1" || !ulidRE.MatchString(h.Get(HeaderMessageID)) {
			t.Errorf("delivery %d headers %v", i, h)
		}
		wantSub := subs[0].SubscriptionID
		if wantTypes[i] == WebhookMetadataUpdated {
			wantSub = subs[1].SubscriptionID
		}
		if h.Get(HeaderSubscriptionID) != wantSub {
			t.Errorf("delivery %d subscription %s, want %s", i, h.Get(HeaderSubscriptionID), wantSub)
		}
		if ts, err := time.Parse(time.RFC3339, h.Get(HeaderTimestamp)); err != nil || time.Since(ts) > time.Minute {
			t.Errorf("delivery %d timestamp %q: %v", i, h.Get(HeaderTimestamp), err)
		}
	}
	var start, end whStatus
	mustUnmarshal(t, got[0].body, &start)
	mustUnmarshal(t, got[2].body, &end)
	if start.StartedAt != live.StartedAt.Format(time.RFC3339) || !start.IsLive || start.EndedAt != nil {
		t.Errorf("start payload %s, want started_at %s", got[0].body, live.StartedAt.Format(time.RFC3339))
	}
	if end.IsLive || end.EndedAt == nil || end.StartedAt != start.StartedAt {
		t.Errorf("end payload %s", got[2].body)
	}
	// Pusher's created_at is not the official start (design: one session,
	// corrected to the official time).
	if live.PusherCreatedAt.Equal(live.StartedAt) {
		t.Error("pusher created_at equals started_at")
	}

	t.Run("list and delete", func(t *testing.T) {
		var env struct{ Data []apiSubscription }
		mustUnmarshal(t, c.get("/public/v1/events/subscriptions", nil).body, &env)
		if len(env.Data) != 2 || env.Data[0].AppID != sim.AppID() || env.Data[0].Method != "webhook" {
			t.Errorf("list %+v", env.Data)
		}
		if r := c.send(http.MethodDelete, "/public/v1/events/subscriptions?id="+subs[1].SubscriptionID, nil); r.status != 204 {
			t.Errorf("delete: %v", r)
		}
		if n := len(sim.WebhookSubscriptions()); n != 1 {
			t.Errorf("%d subscriptions after delete", n)
		}
	})
	t.Run("auto-unsubscribed", func(t *testing.T) {
		sim.DropWebhookSubscriptions()
		var env struct{ Data []apiSubscription }
		mustUnmarshal(t, c.get("/public/v1/events/subscriptions", nil).body, &env)
		if len(env.Data) != 0 {
			t.Errorf("list after drop %+v", env.Data)
		}
		n := len(sink.all())
		if err := sim.GoLive(st.UserID); err != nil {
			t.Fatal(err)
		}
		if stats := sim.WebhookStats(); stats.Queued != 3 {
			t.Errorf("stats %+v", stats)
		}
		if len(sink.all()) != n {
			t.Error("delivery without a subscription")
		}
	})
}

func TestWebhookAtLeastOnce(t *testing.T) {
	sink := newWebhookSink(t)
	sim := startSim(t, WithStreamers(2), WithWebhookURL(sink.url()), WithWebhookDuplicates(1), WithWebhookDelay(50*time.Millisecond))
	sim.o.webhookRetryBase = 10 * time.Millisecond
	c := newAPIClient(t, sim)
	st := sim.Streamers()[0]
	subscribeWebhooks(t, c, st.UserID, WebhookStatusUpdated)
	sink.setStatus(500) // the first attempt fails and is retried
	if err := sim.GoLive(st.UserID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a failed attempt", func() bool { return sim.WebhookStats().Failed >= 1 })
	sink.setStatus(200)
	eventually(t, 3*time.Second, "delivery and duplicate", func() bool { return sim.WebhookStats().Delivered >= 2 })
	got := sink.all()
	ids := map[string]int{}
	for _, d := range got {
		ids[d.header.Get(HeaderMessageID)]++
		if !bytes.Equal(d.body, got[0].body) || d.header.Get(HeaderSignature) != got[0].header.Get(HeaderSignature) {
			t.Error("redelivery differs from the first delivery")
		}
	}
	if len(ids) != 1 {
		t.Errorf("message ids %v, want one id delivered several times", ids)
	}
	if s := sim.WebhookStats(); s.Duplicated != 1 || s.Queued != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestSubscriptionErrors(t *testing.T) {
	sim := startSim(t)
	c := newAPIClient(t, sim)
	for _, tc := range []struct {
		name string
		body any
	}{
		{"no broadcaster", map[string]any{"events": []any{map[string]any{"name": WebhookStatusUpdated, "version": 1}}, "method": "webhook"}},
		{"unknown broadcaster", map[string]any{"broadcaster_user_id": 1, "events": []any{map[string]any{"name": WebhookStatusUpdated, "version": 1}}, "method": "webhook"}},
		{"no events", map[string]any{"broadcaster_user_id": sim.Streamers()[0].UserID, "method": "webhook"}},
		{"bad method", map[string]any{"broadcaster_user_id": sim.Streamers()[0].UserID, "events": []any{map[string]any{"name": WebhookStatusUpdated, "version": 1}}, "method": "carrier-pigeon"}},
		{"not json", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.body == nil {
				r = c.do(http.MethodPost, sim.APIURL()+"/public/v1/events/subscriptions", strings.NewReader("{"), map[string]string{"Authorization": "Bearer " + c.token})
			} else {
				r = c.send(http.MethodPost, "/public/v1/events/subscriptions", tc.body)
			}
			if r.status != 400 {
				t.Errorf("got %v", r)
			}
		})
	}
	if r := c.send(http.MethodDelete, "/public/v1/events/subscriptions", nil); r.status != 400 {
		t.Errorf("delete without id: %v", r)
	}
	if r := c.send(http.MethodDelete, "/public/v1/events/subscriptions?id=nope", nil); r.status != 204 {
		t.Errorf("delete unknown id: %v", r)
	}
}

func TestULID(t *testing.T) {
	// Kick's test vector id: its first 10 characters are Unix milliseconds.
	const kickID = "01JQR5KV0QC94HMETWYNBWRW4Z"
	var ms int64
	for _, r := range kickID[:10] {
		ms = ms<<5 | int64(strings.IndexRune(crockford, r))
	}
	ts := time.UnixMilli(ms).UTC()
	if d := ts.Sub(time.Date(2025, 4, 1, 7, 56, 19, 0, time.UTC)); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("decoded %v, not near the message timestamp", ts)
	}
	id := newULID(ts)
	if !ulidRE.MatchString(id) {
		t.Fatalf("ULID %q", id)
	}
	if diff := cmp.Diff(kickID[:10], id[:10]); diff != "" {
		t.Errorf("time prefix -want +got:\n%s", diff)
	}
	if newULID(ts) == id {
		t.Error("two ULIDs are equal")
	}
}
