package kickrest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/collector/internal/texttest"
)

// Payloads quoted in shared/kick-api.md.
const (
	// §1.5: the spec example that KickLib copied, wrapped in the envelope.
	specChannels = `{"data":[{
  "active_subscribers_count": 150,
  "banner_picture": "text",
  "broadcaster_user_id": 1,
  "canceled_subscribers_count": 25,
  "category": { "id": 1, "name": "text", "thumbnail": "text" },
  "channel_description": "text",
  "slug": "text",
  "stream": {
    "custom_tags": ["tag1", "tag2"],
    "is_live": true,
    "is_mature": true,
    "key": "text",
    "language": "en",
    "start_time": "2025-01-01T11:00:00+11:00",
    "url": "text",
    "viewer_count": 1,
    "thumbnail": "url"
  },
  "stream_title": "text"
}],"message":"OK"}`
	// §1.5: the community fixture.
	fixtureChannels = `{"data":[{"broadcaster_user_id":123,"slug":"streamer","stream_title":"Live",
  "category":{"id":9,"name":"Science","thumbnail":"https://img.test/c"},
  "stream":{"is_live":true,"start_time":"2026-08-02T09:00:00Z","viewer_count":42}}]}`
	// §1.5: gokick's offline channel (zero category) as kicksim renders it.
	offlineChannel = `{"data":[{"broadcaster_user_id":721956,"slug":"quiet","stream_title":"","category":{"id":0,"name":"","thumbnail":""},"stream":{"custom_tags":[],"is_live":false,"is_mature":false,"key":"","language":"","start_time":"0001-01-01T00:00:00Z","url":"","viewer_count":0,"thumbnail":""}}],"message":"OK"}`
	// §1.6a: the spec example of the v1 livestreams item.
	specLivestreams = `{"data":[{
  "broadcaster_user_id": 1,
  "category": { "id": 1, "name": "text", "thumbnail": "text" },
  "channel_id": 1,
  "has_mature_content": true,
  "language": "text",
  "profile_picture": "https://kick.com/img/default-profile-pictures/default2.jpeg",
  "slug": "text",
  "started_at": "2025-04-03T12:00:00+11:00",
  "stream_title": "Test livestream",
  "thumbnail": "text",
  "viewer_count": 1,
  "custom_tags": ["tag1", "tag2"]
}],"message":"OK"}`
	// §1.10.2: the subscription spec example.
	specSubscriptions = `{"data":[{ "app_id": "text", "broadcaster_user_id": 1, "created_at": "2025-01-01T11:00:00+11:00",
  "event": "chat.message.sent", "id": "text", "method": "text",
  "updated_at": "2025-01-02T11:00:00+11:00", "version": 1 }],"message":"OK"}`
	specSubscribeResult = `{"data":[{"name":"livestream.status.updated","version":1,"subscription_id":"01JQ79DGGK8C9117GJN8EHCYGG","error":""}],"message":"OK"}`
	// §1.10.5 and KickLib: the public key response.
	specPublicKey = `{"data":{"public_key":"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq/+l1WnlRrGSolDMA+A8\n-----END PUBLIC KEY-----\n"},"message":"OK"}`
)

var plus11 = time.FixedZone("", 11*3600)

func TestDecodeChannels(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Channel
	}{
		{"spec example", specChannels, []Channel{{
			BroadcasterUserID: 1, Slug: "text", Title: "text",
			Category: Category{ID: 1, Name: "text", Thumbnail: "text"},
			Live:     true, StartedAt: time.Date(2025, 1, 1, 11, 0, 0, 0, plus11), Viewers: 1,
			Language: "en", Mature: true, Thumbnail: "url", Tags: []string{"tag1", "tag2"},
		}}},
		{"community fixture", fixtureChannels, []Channel{{
			BroadcasterUserID: 123, Slug: "streamer", Title: "Live",
			Category: Category{ID: 9, Name: "Science", Thumbnail: "https://img.test/c"},
			Live:     true, StartedAt: time.Date(2026, 8, 2, 9, 0, 0, 0, time.UTC), Viewers: 42,
		}}},
		{"offline, zero category, Go zero start time", offlineChannel, []Channel{{BroadcasterUserID: 721956, Slug: "quiet"}}},
		{"numbers as strings, Laravel date, null category", `{"data":[{"broadcaster_user_id":"676","slug":"xqc","category":null,
			"stream":{"is_live":"true","start_time":"2024-02-06 19:10:40","viewer_count":"949"},"unknown":{"x":[1]}}]}`,
			[]Channel{{BroadcasterUserID: 676, Slug: "xqc", Live: true, StartedAt: time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC), Viewers: 949}}},
		{"PHP empty array category, microsecond date, no stream", `{"data":[{"broadcaster_user_id":668,"category":[],"stream":null},
			{"broadcaster_user_id":2,"stream":{"is_live":1,"start_time":"2025-09-15T21:12:45.000000Z"}}]}`,
			[]Channel{{BroadcasterUserID: 668}, {BroadcasterUserID: 2, Live: true, StartedAt: time.Date(2025, 9, 15, 21, 12, 45, 0, time.UTC)}}},
		{"item without id dropped", `{"data":[{"slug":"ghost"},{"broadcaster_user_id":0}]}`, []Channel{}},
		{"null data", `{"data":null,"message":"OK"}`, []Channel{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeChannels([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeChannels: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, timeEqual); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestDecodeRejects(t *testing.T) {
	tests := []struct{ name, body string }{
		{"html", `<!DOCTYPE html><html><title>Just a moment...</title>`},
		{"data is an object", `{"data":{"broadcaster_user_id":1}}`},
		{"id is a word", `{"data":[{"broadcaster_user_id":"abc"}]}`},
		{"id is fractional", `{"data":[{"broadcaster_user_id":1.5}]}`},
		{"bad date", `{"data":[{"broadcaster_user_id":1,"stream":{"start_time":"yesterday"}}]}`},
		{"non-empty array category", `{"data":[{"broadcaster_user_id":1,"category":[1]}]}`},
		{"truncated", `{"data":[{"broadcaster_user_id":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := DecodeChannels([]byte(tt.body)); err == nil {
				t.Errorf("DecodeChannels = %+v, want an error", got)
			}
		})
	}
}

func TestDecodeLivestreams(t *testing.T) {
	got, err := DecodeLivestreams([]byte(specLivestreams))
	if err != nil {
		t.Fatal(err)
	}
	want := []Livestream{{
		BroadcasterUserID: 1, ChannelID: 1, Slug: "text", Title: "Test livestream",
		Category:  Category{ID: 1, Name: "text", Thumbnail: "text"},
		StartedAt: time.Date(2025, 4, 3, 12, 0, 0, 0, plus11), Viewers: 1, Language: "text", Mature: true,
		Thumbnail: "text", Tags: []string{"tag1", "tag2"},
	}}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeSubscriptionsAndKey(t *testing.T) {
	subs, err := DecodeSubscriptions([]byte(specSubscriptions))
	if err != nil {
		t.Fatal(err)
	}
	wantSubs := []Subscription{{
		ID: "text", AppID: "text", BroadcasterUserID: 1, Event: "chat.message.sent", Version: 1, Method: "text",
		CreatedAt: time.Date(2025, 1, 1, 11, 0, 0, 0, plus11), UpdatedAt: time.Date(2025, 1, 2, 11, 0, 0, 0, plus11),
	}}
	if diff := cmp.Diff(wantSubs, subs, timeEqual); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
	res, err := DecodeSubscriptionResults([]byte(specSubscribeResult))
	if err != nil {
		t.Fatal(err)
	}
	wantRes := []SubscriptionResult{{Name: "livestream.status.updated", Version: 1, SubscriptionID: "01JQ79DGGK8C9117GJN8EHCYGG"}}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	key, err := DecodePublicKey([]byte(specPublicKey))
	if err != nil || key[:26] != "-----BEGIN PUBLIC KEY-----" {
		t.Errorf("DecodePublicKey = %q, %v", key, err)
	}
}

func TestExcerpt(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"collapses whitespace", "  {\"a\":\n\t1}\r\n", nil, `{"a": 1}`},
		{"redacts", `{"token":"SECRET123"}`, []string{"SECRET123"}, `{"token":"[redacted]"}`},
		{"drops invalid UTF-8", "ok\xff\xfeyes", nil, "ok yes"},
		{"truncates", string(long), nil, string(long[:excerptLen]) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := excerpt([]byte(tt.in), tt.secrets...); got != tt.want {
				t.Errorf("excerpt = %q, want %q", got, tt.want)
			}
		})
	}
}

// Fuzz targets: the decoders must never panic, and what they return must
// make sense (positive ids, no year-1 times).

func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

func FuzzDecodeChannels(f *testing.F) {
	addSeeds(f, specChannels, fixtureChannels, offlineChannel, `{"data":[{"broadcaster_user_id":"1","category":[],"stream":{"start_time":"2024-02-06 19:10:40"}}]}`,
		// The crash loop of issue 11: a title with invalid UTF-8 and no escapes.
		"{\"data\":[{\"broadcaster_user_id\":1,\"slug\":\"a\",\"stream_title\":\"\xff\xfe\",\"category\":{\"id\":1,\"name\":\"x\xc3\"}}]}")
	f.Fuzz(func(t *testing.T, body []byte) {
		chs, err := DecodeChannels(body)
		if err != nil {
			return
		}
		for _, c := range chs {
			if c.BroadcasterUserID <= 0 {
				t.Errorf("item with id %d", c.BroadcasterUserID)
			}
			if !c.StartedAt.IsZero() && c.StartedAt.Year() <= 1 {
				t.Errorf("year-1 start time %v", c.StartedAt)
			}
			texttest.Check(t, c.Slug, c.Title, c.Category.Name, c.Language, c.Thumbnail)
		}
	})
}

// channelSeeds are channels bodies of the plain shape and around it.
var channelSeeds = []string{specChannels, fixtureChannels, offlineChannel,
	`{"data":[{"broadcaster_user_id":"1","category":[],"stream":{"start_time":"2024-02-06 19:10:40"}}]}`,
	"{\"data\":[{\"broadcaster_user_id\":1,\"slug\":\"a\",\"stream_title\":\"\xff\xfe\",\"category\":{\"id\":1,\"name\":\"x\xc3\"}}]}",
	`{"data":[{"broadcaster_user_id":1,"Slug":"folded","stream":{"is_live":true},"stream":{"viewer_count":3}}]}`,
	`{"data":[null,{"broadcaster_user_id":2,"stream":null,"category":null}],"message":"OK"} `,
	`{"data":null}`, `{}`, `{"data":[]}`, `{"data":[1]}`, `{"data":[{"broadcaster_user_id":01}]}`,
	`{"message":{},"data":[{"broadcaster_user_id":1}]}`, `{"data":[{"broadcaster_user_id":1,"slug":"a\u00e9\n"}]} x`,
}

// The fast path takes the plain bodies, Kick's and kicksim's.
func TestFastChannelsTakesThePlainShape(t *testing.T) {
	for _, body := range []string{specChannels, fixtureChannels, offlineChannel, `{"data":[]}`, `{"data":null}`} {
		if _, err := fastChannels([]byte(body)); err != nil {
			t.Errorf("fastChannels gave up on %s", body)
		}
	}
}

// fastChannels, when it takes a body, decodes it as encoding/json does.
func FuzzFastChannels(f *testing.F) {
	addSeeds(f, channelSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, err := fastChannels(body)
		if err != nil {
			return
		}
		slow, err := slowChannels(body)
		if err != nil {
			t.Fatalf("fast path took a body encoding/json refuses (%v): %q", err, body)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("fast path differs (-encoding/json +fast) on %q:\n%s", body, diff)
		}
	})
}

func FuzzDecodeLivestreams(f *testing.F) {
	addSeeds(f, specLivestreams, `{"data":[{"broadcaster_user_id":1,"channel_id":"2","started_at":"2025-09-15T21:12:45.000000Z"}]}`,
		"{\"data\":[{\"broadcaster_user_id\":1,\"stream_title\":\"t\xff\xfe\\u0000\"}]}")
	f.Fuzz(func(t *testing.T, body []byte) {
		ls, err := DecodeLivestreams(body)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l.BroadcasterUserID <= 0 {
				t.Errorf("item with id %d", l.BroadcasterUserID)
			}
			texttest.Check(t, l.Slug, l.Title, l.Category.Name, l.Language, l.Thumbnail)
		}
	})
}

func FuzzDecodeSubscriptions(f *testing.F) {
	addSeeds(f, specSubscriptions, specSubscribeResult, specPublicKey)
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = DecodeSubscriptions(body)
		_, _ = DecodeSubscriptionResults(body)
		_, _ = DecodePublicKey(body)
	})
}

// BenchmarkDecodeChannels decodes a full batch: 50 live channels of the
// spec shape.
func BenchmarkDecodeChannels(b *testing.B) {
	item := specChannels[len(`{"data":[`) : len(specChannels)-len(`],"message":"OK"}`)]
	body := []byte(`{"data":[` + item)
	for range 49 {
		body = append(body, ',')
		body = append(body, item...)
	}
	body = append(body, `],"message":"OK"}`...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		chs, err := DecodeChannels(body)
		if err != nil || len(chs) != 50 {
			b.Fatalf("%d, %v", len(chs), err)
		}
	}
}
