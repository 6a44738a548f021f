package targets

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/notify/internal/config"
	"github.com/kickmon/kickmon/notify/internal/message"
)

type captured struct {
	header http.Header
	body   []byte
}

// server answers every request with status (and body, header) and hands
// each request to the test.
func server(t *testing.T, status int, body string, header map[string]string) (string, <-chan captured) {
	t.Helper()
	got := make(chan captured, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Clone(), b}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/webhooks/1/SECRETTOKEN", got
}

func delivery(typ, url string) Delivery {
	n := message.Sample(message.Live)
	n.Title = "@everyone <@&123> free skins <!channel>"
	return Delivery{
		Target: &config.Target{Name: "t1", Type: typ, URL: url, Secret: []byte("key")},
		Notice: n, Text: "xqc is live: " + n.Title, Event: json.RawMessage(`{"seq":"42"}`), Key: Key("t1", 42),
	}
}

func send(t *testing.T, d Delivery) (string, error) {
	t.Helper()
	s := &Sender{Client: &http.Client{Timeout: 10 * time.Second}, UserAgent: "test"}
	return s.Send(context.Background(), d)
}

// A title cannot ping anyone on Discord: allowed_mentions parses nothing,
// and the embed carries the stream's facts.
func TestDiscordMentionSafety(t *testing.T) {
	url, got := server(t, http.StatusNoContent, "", nil)
	if _, err := send(t, delivery(config.Discord, url)); err != nil {
		t.Fatal(err)
	}
	req := <-got
	var body struct {
		Content         string `json:"content"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
		Embeds []struct {
			Title, URL, Timestamp string
			Fields                []struct{ Name, Value string }
			Image                 *struct{ URL string }
		} `json:"embeds"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.AllowedMentions == nil || body.AllowedMentions.Parse == nil || len(body.AllowedMentions.Parse) != 0 {
		t.Errorf("allowed_mentions = %s, want {\"parse\": []}", req.body)
	}
	if !strings.Contains(string(req.body), `"allowed_mentions":{"parse":[]}`) {
		t.Errorf("body %s: allowed_mentions.parse must be an empty list, not null", req.body)
	}
	if len(body.Embeds) != 1 || body.Embeds[0].URL != "https://kick.com/xqc" || body.Embeds[0].Timestamp != "2026-01-02T20:00:00Z" {
		t.Fatalf("embeds = %+v", body.Embeds)
	}
	fields := map[string]string{}
	for _, f := range body.Embeds[0].Fields {
		fields[f.Name] = f.Value
	}
	if fields["Category"] != "Just Chatting" || fields["Viewers"] != "1234" {
		t.Errorf("fields = %v", fields)
	}
	if img := body.Embeds[0].Image; img == nil || img.URL != message.Sample(message.Live).Thumbnail {
		t.Errorf("embed image = %+v, want the stream's thumbnail", img)
	}
	if req.header.Get(HeaderDelivery) != "t1:42" || req.header.Get(HeaderKind) != "live" {
		t.Errorf("headers = %v", req.header)
	}
}

// The stream's thumbnail is the embed's image only when Discord can fetch
// it: anything else would make Discord refuse the whole message.
func TestDiscordImage(t *testing.T) {
	tests := []struct {
		name, thumbnail string
		want            bool
	}{
		{"https", "https://images.kick.com/video_thumbnails/xqc/1/720.webp", true},
		{"http", "http://img.test/a.webp", true},
		{"none", "", false},
		{"relative", "/video_thumbnails/xqc/1/720.webp", false},
		{"other scheme", "javascript:alert(1)", false},
		{"no host", "https:///a.webp", false},
		{"not a URL", "https://img.test/%zz", false},
		{"too long", "https://img.test/" + strings.Repeat("a", 2048), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := delivery(config.Discord, "")
			d.Notice.Thumbnail = tt.thumbnail
			e := discordMessage(d).Embeds[0]
			if got := e.Image != nil && e.Image.URL == tt.thumbnail; got != tt.want {
				t.Errorf("image = %+v, want shown %v", e.Image, tt.want)
			}
		})
	}
}

func TestSlackEscapesControlSequences(t *testing.T) {
	url, got := server(t, http.StatusOK, "ok", nil)
	if _, err := send(t, delivery(config.Slack, url)); err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal((<-got).body, &body); err != nil {
		t.Fatal(err)
	}
	if want := "xqc is live: @everyone &lt;@&amp;123&gt; free skins &lt;!channel&gt;"; body["text"] != want {
		t.Errorf("text = %q, want %q", body["text"], want)
	}
}

func TestNtfy(t *testing.T) {
	url, got := server(t, http.StatusOK, "{}", nil)
	if _, err := send(t, delivery(config.Ntfy, url)); err != nil {
		t.Fatal(err)
	}
	req := <-got
	if string(req.body) != "xqc is live: @everyone <@&123> free skins <!channel>" || req.header.Get("Title") != "xqc is live" || req.header.Get("Click") != "https://kick.com/xqc" {
		t.Errorf("ntfy request = %q %v", req.body, req.header)
	}
}

// The webhook body is the event; the signature is the hex HMAC-SHA256 of
// exactly that body with the target's secret.
func TestWebhookSignature(t *testing.T) {
	url, got := server(t, http.StatusAccepted, "", nil)
	if _, err := send(t, delivery(config.Webhook, url)); err != nil {
		t.Fatal(err)
	}
	req := <-got
	m := hmac.New(sha256.New, []byte("key"))
	m.Write(req.body)
	if want := hex.EncodeToString(m.Sum(nil)); req.header.Get(HeaderSignature) != want {
		t.Errorf("signature %q, want %q", req.header.Get(HeaderSignature), want)
	}
	if string(req.body) != `{"seq":"42"}` || req.header.Get(HeaderDelivery) != "t1:42" {
		t.Errorf("request = %s %v", req.body, req.header)
	}
	// A known vector, so receivers in other languages can check theirs.
	if got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog")); got != "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Errorf("Sign = %s", got)
	}
}

func TestErrorsSayWhetherAndWhenToRetry(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		header map[string]string
		want   Error
	}{
		{"discord 429 retry_after in the body", 429, `{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}`, nil, Error{Status: 429, RetryAfter: 1500 * time.Millisecond}},
		{"429 Retry-After header", 429, "slow down", map[string]string{"Retry-After": "3"}, Error{Status: 429, RetryAfter: 3 * time.Second}},
		{"500", 500, "oops", nil, Error{Status: 500}},
		{"408", 408, "", nil, Error{Status: 408}},
		{"404 deleted webhook", 404, `{"message": "Unknown Webhook"}`, nil, Error{Status: 404, Permanent: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := server(t, tt.status, tt.body, tt.header)
			_, err := send(t, delivery(config.Discord, url))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if d := cmp.Diff(tt.want, *e, cmp.Comparer(func(a, b Error) bool {
				return a.Status == b.Status && a.RetryAfter == b.RetryAfter && a.Permanent == b.Permanent
			})); d != "" {
				t.Errorf("error %v (-want +got):\n%s", e, d)
			}
			if strings.Contains(err.Error(), "SECRETTOKEN") {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
	t.Run("network error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL + "/api/webhooks/1/SECRETTOKEN"
		srv.Close()
		_, err := send(t, delivery(config.Discord, url))
		var e *Error
		if !errors.As(err, &e) || e.Permanent || e.Status != 0 {
			t.Fatalf("err = %#v, want a retryable *Error", err)
		}
		if strings.Contains(err.Error(), "SECRETTOKEN") {
			t.Errorf("error quotes the URL: %v", err)
		}
	})
}
