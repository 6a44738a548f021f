package kicksim

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The contract tests decode Kick's real or documented payloads (testdata,
// sources in testdata/README.md) and kicksim's own output with the same
// decoders and compare them key by key and JSON type by JSON type.

func requireSameShape(t *testing.T, fixture, got any, subset bool) {
	t.Helper()
	if diffs := shapeDiff(fixture, got, "$", subset); len(diffs) > 0 {
		t.Errorf("shape differs from Kick's:\n  %s", strings.Join(diffs, "\n  "))
	}
}

// firstItem decodes an envelope and returns data[0], checking the envelope.
func firstItem(t *testing.T, body []byte) any {
	t.Helper()
	env := decodeTree(t, body).(map[string]any)
	if diff := cmp.Diff([]string{"data", "message"}, sortedKeys(env)); diff != "" || env["message"] != "OK" {
		t.Fatalf("envelope %s: -want +got keys\n%s", body, diff)
	}
	items, ok := env["data"].([]any)
	if !ok || len(items) == 0 {
		t.Fatalf("data is not a non-empty array: %s", body)
	}
	return items[0]
}

func TestContractREST(t *testing.T) {
	sim := startSim(t, WithStreamers(10))
	c := newAPIClient(t, sim)
	all := sim.Streamers()
	live, off := all[1], all[2]
	if err := sim.GoLive(live.UserID); err != nil {
		t.Fatal(err)
	}
	_ = sim.GoLive(all[4].UserID) // custom_tags non-empty for some
	byID := func(id int64) []byte { return c.get("/public/v1/channels", idsQuery("broadcaster_user_id", id)).body }

	for _, tc := range []struct {
		name    string
		fixture string
		got     func() any
		subset  bool
	}{
		{"channels live item", "channels_item_spec.json", func() any { return firstItem(t, byID(live.UserID)) }, false},
		{"channels offline item", "channels_item_spec.json", func() any { return firstItem(t, byID(off.UserID)) }, false},
		{"channels by slug item", "channels_item_spec.json", func() any {
			return firstItem(t, c.get("/public/v1/channels", url.Values{"slug": {live.Slug}}).body)
		}, false},
		{"channels response (community fixture)", "channels_response_community.json", func() any { return decodeTree(t, byID(live.UserID)) }, true},
		{"livestreams item", "livestreams_item_spec.json", func() any {
			return firstItem(t, c.get("/public/v1/livestreams", idsQuery("broadcaster_user_id", live.UserID)).body)
		}, false},
		{"users/livestreams item (LivestreamV2)", "livestreams_v2_response_community.json", func() any {
			return map[string]any{"data": []any{firstItem(t, c.get("/public/v1/users/livestreams", idsQuery("user_id", live.UserID)).body)}}
		}, true},
		{"subscriptions list item", "subscriptions_list_item_spec.json", func() any {
			subscribeWebhooks(t, c, live.UserID, WebhookStatusUpdated)
			return firstItem(t, c.get("/public/v1/events/subscriptions", nil).body)
		}, false},
		{"subscriptions create response", "subscriptions_create_response.json", func() any {
			body := readFixture(t, "subscriptions_create_request.json")
			body = bytes.Replace(body, []byte("123456789"), []byte(itoa(live.UserID)), 1)
			r := c.do(http.MethodPost, sim.APIURL()+"/public/v1/events/subscriptions", bytes.NewReader(body), map[string]string{"Authorization": "Bearer " + c.token, "Content-Type": "application/json"})
			return decodeTree(t, r.body)
		}, false},
		{"oauth 400", "oauth_400_documented.json", func() any {
			return decodeTree(t, c.tokenRequest(url.Values{"grant_type": {"client_credentials"}}).body)
		}, false},
		{"403 WAF", "waf_403.json", func() any {
			sim.FailNext(EndpointChannels, 1, Fault403WAF)
			return decodeTree(t, byID(live.UserID))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fixture := decodeTree(t, readFixture(t, tc.fixture))
			if tc.name == "users/livestreams item (LivestreamV2)" {
				delete(fixture.(map[string]any), "pagination") // v2 listing only
			}
			requireSameShape(t, fixture, tc.got(), tc.subset)
		})
	}

	t.Run("v2 item exactly", func(t *testing.T) {
		fixture := decodeTree(t, readFixture(t, "livestreams_v2_response_community.json")).(map[string]any)["data"].([]any)[0]
		requireSameShape(t, fixture, firstItem(t, c.get("/public/v1/users/livestreams", idsQuery("user_id", live.UserID)).body), false)
	})
	t.Run("token response", func(t *testing.T) {
		r := c.tokenRequest(url.Values{"grant_type": {"client_credentials"}, "client_id": {sim.ClientID()}, "client_secret": {sim.ClientSecret()}})
		got := decodeTree(t, r.body).(map[string]any)
		doc := decodeTree(t, readFixture(t, "oauth_token_documented.json")).(map[string]any)
		if diff := cmp.Diff(sortedKeys(doc), sortedKeys(got)); diff != "" {
			t.Errorf("keys -doc +sim:\n%s", diff)
		}
		// The doc shows placeholders; community clients type these (§1.2).
		wantTypes := map[string]string{"access_token": "string", "token_type": "string", "expires_in": "number"}
		for k, typ := range wantTypes {
			if jsonType(got[k]) != typ {
				t.Errorf("%s is %s, want %s", k, jsonType(got[k]), typ)
			}
		}
	})
	t.Run("byte-exact error bodies", func(t *testing.T) {
		if got := c.get("/public/v1/channels", nil).body; string(got) != string(readFixture(t, "channels_400_app_token.json")) {
			t.Errorf("400 body %s", got)
		}
		sim.FailNext(EndpointChannels, 1, Fault401)
		if got := byID(live.UserID); string(got) != string(readFixture(t, "api_401.json")) {
			t.Errorf("401 body %s", got)
		}
	})
	t.Run("public key", func(t *testing.T) {
		fixture := decodeTree(t, readFixture(t, "public_key_response.json")).(map[string]any)
		got := decodeTree(t, c.get("/public/v1/public-key", nil).body).(map[string]any)
		requireSameShape(t, fixture["data"], got["data"], false)
		if got["message"] != "OK" {
			t.Errorf("message %v", got["message"])
		}
		pem := got["data"].(map[string]any)["public_key"].(string)
		parsePublicKey(t, []byte(pem))
		if !strings.HasPrefix(pem, "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC") {
			t.Errorf("not an RSA 2048 PKIX PEM like Kick's: %.60q", pem)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestContractWebhooks(t *testing.T) {
	sink := newWebhookSink(t)
	sim := startSim(t, WithStreamers(3), WithWebhookURL(sink.url()))
	c := newAPIClient(t, sim)
	st := sim.Streamers()[0]
	subscribeWebhooks(t, c, st.UserID, WebhookStatusUpdated, WebhookMetadataUpdated)
	if err := sim.GoLive(st.UserID); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetCategory(st.UserID, 28); err != nil {
		t.Fatal(err)
	}
	if err := sim.GoOffline(st.UserID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "3 deliveries", func() bool { return len(sink.all()) == 3 })
	got := sink.all()
	real := decodeTree(t, readFixture(t, "ValidationPayload.json"))
	t.Run("status started = real delivery", func(t *testing.T) {
		requireSameShape(t, real, decodeTree(t, got[0].body), false)
	})
	t.Run("status ended", func(t *testing.T) {
		ended := decodeTree(t, readFixture(t, "ValidationPayload.json")).(map[string]any)
		ended["is_live"], ended["ended_at"] = false, "2025-01-01T15:00:00+11:00" // §1.10.4: "the same, but"
		requireSameShape(t, ended, decodeTree(t, got[2].body), false)
	})
	t.Run("status documented example", func(t *testing.T) {
		doc := decodeTree(t, readFixture(t, "webhook_status_started_doc.json")).(map[string]any)
		b := doc["broadcaster"].(map[string]any)
		delete(b, "identity")    // absent from the real delivery
		delete(b, "is_verified") // null in the real delivery, bool in the doc
		requireSameShape(t, doc, decodeTree(t, got[0].body), true)
	})
	t.Run("metadata", func(t *testing.T) {
		requireSameShape(t, decodeTree(t, readFixture(t, "webhook_metadata_doc.json")), decodeTree(t, got[1].body), false)
	})
}

// TestContractPusher compares kicksim's frames with the real frames, frame
// keys and double-encoded data alike.
func TestContractPusher(t *testing.T) {
	sim := startSim(t, WithStreamers(3))
	st := sim.Streamers()[0]
	ch := channelName(st)
	c, _ := connect(t, sim)
	raw := map[string][]byte{}
	est, _ := c.readRawFrame(t, sim)
	raw["pusher:connection_established"] = est
	c.send(`{"event":"pusher:subscribe","data":{"auth":"","channel":"` + ch + `"}}`)
	raw["pusher_internal:subscription_succeeded"], _ = c.readEvent("pusher_internal:subscription_succeeded", time.Second)
	c.send(`{"event":"pusher:ping","data":{}}`)
	raw["pusher:pong"], _ = c.readEvent("pusher:pong", time.Second)
	steps := []struct {
		event string
		act   func() error
	}{
		{EventStreamerIsLive, func() error { return sim.GoLive(st.UserID) }},
		{EventLivestreamUpdated, func() error { return sim.SetTitle(st.UserID, "$55 start") }},
		{EventFollowersUpdated, func() error { return sim.EmitNoise(st.UserID) }},
		{EventChannelSubscription, func() error { return sim.EmitNoise(st.UserID) }},
		{EventStopStreamBroadcast, func() error { return sim.GoOffline(st.UserID) }},
	}
	for _, s := range steps {
		if err := s.act(); err != nil {
			t.Fatal(err)
		}
		raw[s.event], _ = c.readEvent(s.event, time.Second)
	}

	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, "pusher_frames.jsonl")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		want := decodeFrame(t, sc.Bytes())
		t.Run(want.Event, func(t *testing.T) {
			b, ok := raw[want.Event]
			if !ok {
				t.Fatalf("kicksim sent no %s", want.Event)
			}
			got := decodeFrame(t, b)
			if diff := cmp.Diff(sortedKeys(want.Raw), sortedKeys(got.Raw)); diff != "" {
				t.Errorf("frame keys -kick +sim:\n%s", diff)
			}
			if got.DataIsString != want.DataIsString {
				t.Errorf("data is a string: %v, Kick's: %v", got.DataIsString, want.DataIsString)
			}
			requireSameShape(t, want.Data, got.Data, false)
		})
	}
	for _, tc := range []struct{ fixture, event string }{
		{"pusher_streamer_is_live_xqc.json", EventStreamerIsLive},
		{"pusher_stop_stream_broadcast_4head.json", EventStopStreamBroadcast},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			got := decodeFrame(t, raw[tc.event])
			requireSameShape(t, decodeTree(t, readFixture(t, tc.fixture)), got.Data, false)
			if got.Channel != ch {
				t.Errorf("channel %q, want %q", got.Channel, ch)
			}
		})
	}
	t.Run("date formats", func(t *testing.T) {
		l := decodeFrame(t, raw[EventStreamerIsLive]).Data.(map[string]any)["livestream"].(map[string]any)
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z", l["created_at"].(string)); err != nil {
			t.Errorf("StreamerIsLive created_at: %v", err)
		}
		u := decodeFrame(t, raw[EventLivestreamUpdated]).Data.(map[string]any)["livestream"].(map[string]any)
		for _, k := range []string{"created_at", "start_time"} {
			if _, err := time.Parse("2006-01-02 15:04:05", u[k].(string)); err != nil {
				t.Errorf("LivestreamUpdated %s: %v", k, err)
			}
		}
	})
}

// readRawFrame returns the connection_established frame connect already
// consumed, by reconnecting once.
func (c *wsClient) readRawFrame(t *testing.T, sim *Sim) ([]byte, error) {
	t.Helper()
	c2 := dialPusher(t, sim.PusherURL())
	return c2.readRaw(time.Second)
}
