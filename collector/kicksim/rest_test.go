package kicksim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOAuthToken(t *testing.T) {
	sim := startSim(t, WithTokenTTL(90*time.Minute))
	c := newAPIClient(t, sim)
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {sim.ClientID()}, "client_secret": {sim.ClientSecret()}}
	with := func(k, v string) url.Values {
		u := url.Values{}
		for kk, vv := range good {
			u[kk] = vv
		}
		if v == "" {
			u.Del(k)
		} else {
			u.Set(k, v)
		}
		return u
	}
	for _, tc := range []struct {
		name      string
		form      url.Values
		status    int
		wantError string
	}{
		{"ok", good, 200, ""},
		{"missing secret", with("client_secret", ""), 400, "Invalid request"},
		{"missing grant", with("grant_type", ""), 400, "Invalid request"},
		{"wrong secret", with("client_secret", "nope"), 401, "invalid_client"},
		{"wrong id", with("client_id", "nope"), 401, "invalid_client"},
		{"other grant", with("grant_type", "authorization_code"), 400, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.tokenRequest(tc.form)
			if r.status != tc.status {
				t.Fatalf("status %v, want %d", r, tc.status)
			}
			if tc.status == 200 {
				var tr map[string]any
				mustUnmarshal(t, r.body, &tr)
				want := map[string]any{"access_token": tr["access_token"], "token_type": "Bearer", "expires_in": float64(5400)}
				if diff := cmp.Diff(want, tr); diff != "" {
					t.Errorf("-want +got:\n%s", diff)
				}
				if s, _ := tr["access_token"].(string); len(s) < 32 {
					t.Errorf("access_token %q too short", s)
				}
				return
			}
			var e map[string]any
			mustUnmarshal(t, r.body, &e)
			if e["error"] != tc.wantError {
				t.Errorf("error %v, want %q", e["error"], tc.wantError)
			}
			if tc.status == 401 || tc.wantError == "unsupported_grant_type" {
				if diff := cmp.Diff([]string{"error", "error_description", "message"}, sortedKeys(e)); diff != "" {
					t.Errorf("OAuth error keys -want +got:\n%s", diff)
				}
			}
		})
	}
	t.Run("json body is refused", func(t *testing.T) {
		r := c.do(http.MethodPost, sim.AuthURL()+"/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`), map[string]string{"Content-Type": "application/json"})
		if r.status != 400 {
			t.Errorf("got %v", r)
		}
	})
}

func TestTokenExpiryAndRevoke(t *testing.T) {
	sim := startSim(t, WithTokenTTL(150*time.Millisecond))
	c := newAPIClient(t, sim)
	id := sim.Streamers()[0].UserID
	q := url.Values{"broadcaster_user_id": {strconv.FormatInt(id, 10)}}
	if r := c.get("/public/v1/channels", q); r.status != 200 {
		t.Fatalf("fresh token: %v", r)
	}
	eventually(t, 2*time.Second, "token expiry", func() bool { return c.get("/public/v1/channels", q).status == 401 })
	r := c.get("/public/v1/channels", q)
	if string(r.body) != `{"data":{},"message":"Unauthorized"}` {
		t.Errorf("401 body %s", r.body)
	}

	sim2 := startSim(t)
	c2 := newAPIClient(t, sim2)
	if r := c2.get("/public/v1/channels", q); r.status != 200 {
		t.Fatalf("fresh token: %v", r)
	}
	sim2.RevokeTokens()
	if r := c2.get("/public/v1/channels", q); r.status != 401 || string(r.body) != `{"data":{},"message":"Unauthorized"}` {
		t.Errorf("after revoke: %v", r)
	}
	c2.token = c2.fetchToken()
	if r := c2.get("/public/v1/channels", q); r.status != 200 {
		t.Errorf("new token after revoke: %v", r)
	}
	for _, hdr := range []string{"", "Bearer", "Bearer nope", "Basic " + c2.token} {
		r := c2.do(http.MethodGet, sim2.APIURL()+"/public/v1/channels?"+q.Encode(), nil, map[string]string{"Authorization": hdr})
		if r.status != 401 {
			t.Errorf("Authorization %q: %v", hdr, r)
		}
	}
}

func idsQuery(key string, ids ...int64) url.Values {
	q := url.Values{}
	for _, id := range ids {
		q.Add(key, strconv.FormatInt(id, 10))
	}
	return q
}

func TestChannels(t *testing.T) {
	sim := startSim(t, WithStreamers(120))
	c := newAPIClient(t, sim)
	all := sim.Streamers()
	ids := make([]int64, 0, 51)
	for _, st := range all[:51] {
		ids = append(ids, st.UserID)
	}
	for _, tc := range []struct {
		name   string
		q      url.Values
		status int
		body   string // exact, when set
		count  int
	}{
		{"by 50 ids", idsQuery("broadcaster_user_id", ids[:50]...), 200, "", 50},
		{"51 ids", idsQuery("broadcaster_user_id", ids...), 400, "", 0},
		{"unknown ids are absent", idsQuery("broadcaster_user_id", ids[0], 1, 2, ids[1]), 200, "", 2},
		{"duplicate ids once", idsQuery("broadcaster_user_id", ids[0], ids[0]), 200, "", 1},
		{"bad id", url.Values{"broadcaster_user_id": {"abc"}}, 400, "", 0},
		{"neither", nil, 400, `{"data":"broadcaster_user_id is required for app tokens","message":"Bad request"}`, 0},
		{"mixing", url.Values{"broadcaster_user_id": {"1"}, "slug": {all[0].Slug}}, 400, "", 0},
		{"by slugs", url.Values{"slug": {all[0].Slug, all[1].Slug}}, 200, "", 2},
		{"unknown slug fails the batch", url.Values{"slug": {all[0].Slug, "no-such-streamer"}}, 400, "", 0},
		{"slug over 25", url.Values{"slug": {strings.Repeat("a", 26)}}, 400, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.get("/public/v1/channels", tc.q)
			if r.status != tc.status {
				t.Fatalf("got %v, want status %d", r, tc.status)
			}
			if tc.body != "" && string(r.body) != tc.body {
				t.Errorf("body %s\nwant %s", r.body, tc.body)
			}
			var env map[string]any
			mustUnmarshal(t, r.body, &env)
			if diff := cmp.Diff([]string{"data", "message"}, sortedKeys(env)); diff != "" {
				t.Errorf("envelope -want +got:\n%s", diff)
			}
			if tc.status == 200 {
				if env["message"] != "OK" || len(env["data"].([]any)) != tc.count {
					t.Errorf("got %d items, message %v", len(env["data"].([]any)), env["message"])
				}
			} else if env["message"] != "Bad request" {
				t.Errorf("message %v", env["message"])
			}
		})
	}
	t.Run("offline and live items", func(t *testing.T) {
		st := all[3] // every fourth streamer renders times with +11:00
		r := c.get("/public/v1/channels", idsQuery("broadcaster_user_id", st.UserID))
		var env struct{ Data []map[string]any }
		mustUnmarshal(t, r.body, &env)
		off := env.Data[0]
		if diff := cmp.Diff(map[string]any{"id": float64(0), "name": "", "thumbnail": ""}, off["category"]); diff != "" {
			t.Errorf("offline category -want +got:\n%s", diff)
		}
		wantStream := map[string]any{"custom_tags": []any{}, "is_live": false, "is_mature": false, "key": "", "language": "",
			"start_time": "0001-01-01T00:00:00Z", "url": "", "viewer_count": float64(0), "thumbnail": ""}
		if diff := cmp.Diff(wantStream, off["stream"]); diff != "" || off["stream_title"] != "" {
			t.Errorf("offline stream (title %q) -want +got:\n%s", off["stream_title"], diff)
		}
		if err := sim.GoLive(st.UserID); err != nil {
			t.Fatal(err)
		}
		live, _ := sim.Streamer(st.UserID)
		mustUnmarshal(t, c.get("/public/v1/channels", idsQuery("broadcaster_user_id", st.UserID)).body, &env)
		s := env.Data[0]["stream"].(map[string]any)
		wantStart := live.StartedAt.In(time.FixedZone("", 11*3600)).Format(time.RFC3339)
		if s["is_live"] != true || s["start_time"] != wantStart || !strings.HasSuffix(wantStart, "+11:00") || env.Data[0]["stream_title"] != live.Title {
			t.Errorf("live stream %v title %v, want start %s", s, env.Data[0]["stream_title"], wantStart)
		}
		if ts, _ := time.Parse(time.RFC3339, s["start_time"].(string)); !ts.Equal(live.StartedAt) {
			t.Errorf("start_time instant %v, want %v", ts, live.StartedAt)
		}
	})
	t.Run("renamed slug", func(t *testing.T) {
		st := all[5]
		if err := sim.Rename(st.UserID, "renamed-streamer"); err != nil {
			t.Fatal(err)
		}
		if r := c.get("/public/v1/channels", url.Values{"slug": {st.Slug}}); r.status != 400 {
			t.Errorf("old slug: %v", r)
		}
		var env struct{ Data []map[string]any }
		mustUnmarshal(t, c.get("/public/v1/channels", url.Values{"slug": {"renamed-streamer"}}).body, &env)
		if len(env.Data) != 1 || env.Data[0]["broadcaster_user_id"] != float64(st.UserID) {
			t.Errorf("new slug: %v", env.Data)
		}
		for _, bad := range []string{"Upper", "", strings.Repeat("x", 26), all[6].Slug} {
			if err := sim.Rename(st.UserID, bad); err == nil {
				t.Errorf("Rename(%q) succeeded", bad)
			}
		}
	})
}

func TestLivestreams(t *testing.T) {
	sim := startSim(t, WithStreamers(60))
	c := newAPIClient(t, sim)
	all := sim.Streamers()
	for _, st := range all[:3] {
		if err := sim.GoLive(st.UserID); err != nil {
			t.Fatal(err)
		}
	}
	ids := []int64{all[0].UserID, all[1].UserID, all[4].UserID}
	t.Run("v1 by broadcaster ids returns channel_id for live ones", func(t *testing.T) {
		var env struct{ Data []apiLivestream }
		mustUnmarshal(t, c.get("/public/v1/livestreams", idsQuery("broadcaster_user_id", ids...)).body, &env)
		got := map[int64]int64{}
		for _, it := range env.Data {
			got[it.BroadcasterUserID] = it.ChannelID
		}
		want := map[int64]int64{all[0].UserID: all[0].ChannelID, all[1].UserID: all[1].ChannelID}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("-want +got:\n%s", diff)
		}
	})
	t.Run("v1 listing", func(t *testing.T) {
		var env struct{ Data []apiLivestream }
		mustUnmarshal(t, c.get("/public/v1/livestreams", url.Values{"limit": {"2"}, "sort": {"viewer_count"}}).body, &env)
		if len(env.Data) != 2 || env.Data[0].ViewerCount < env.Data[1].ViewerCount {
			t.Errorf("got %+v", env.Data)
		}
		for _, q := range []url.Values{{"limit": {"0"}}, {"limit": {"101"}}, {"sort": {"viewers_desc"}}} {
			if r := c.get("/public/v1/livestreams", q); r.status != 400 {
				t.Errorf("%v: %v", q, r)
			}
		}
	})
	t.Run("users/livestreams", func(t *testing.T) {
		var env struct{ Data []apiLivestreamV2 }
		r := c.get("/public/v1/users/livestreams", idsQuery("user_id", ids...))
		mustUnmarshal(t, r.body, &env)
		if len(env.Data) != 2 || env.Data[0].BroadcasterUser.ID != all[0].UserID || env.Data[0].Channel.Slug != all[0].Slug {
			t.Errorf("got %s", r.body)
		}
		many := make([]int64, 101)
		for i := range many {
			many[i] = int64(i + 1)
		}
		if r := c.get("/public/v1/users/livestreams", idsQuery("user_id", many...)); r.status != 400 {
			t.Errorf("101 ids: %v", r)
		}
		if r := c.get("/public/v1/users/livestreams", nil); r.status != 400 {
			t.Errorf("no ids: %v", r)
		}
	})
}

func TestFaultsAndRecovery(t *testing.T) {
	sim := startSim(t)
	c := newAPIClient(t, sim)
	q := idsQuery("broadcaster_user_id", sim.Streamers()[0].UserID)
	for _, ep := range []struct {
		ep   Endpoint
		call func() response
	}{
		{EndpointChannels, func() response { return c.get("/public/v1/channels", q) }},
		{EndpointLivestreams, func() response { return c.get("/public/v1/livestreams", nil) }},
		{EndpointUsersLivestreams, func() response { return c.get("/public/v1/users/livestreams", url.Values{"user_id": {"1"}}) }},
		{EndpointPublicKey, func() response { return c.get("/public/v1/public-key", nil) }},
		{EndpointSubscriptions, func() response { return c.get("/public/v1/events/subscriptions", nil) }},
		{EndpointToken, func() response {
			return c.tokenRequest(url.Values{"grant_type": {"client_credentials"}, "client_id": {sim.ClientID()}, "client_secret": {sim.ClientSecret()}})
		}},
	} {
		for _, tc := range []struct {
			fault       Fault
			status      int
			contentType string
			bodyHas     string
			header      string
		}{
			{Fault429, 429, "application/json", "", ""},
			{Fault401, 401, "application/json", "", ""},
			{Fault403HTML, 403, "text/html; charset=UTF-8", "<title>Just a moment...</title>", "Cf-Mitigated"},
			{Fault403WAF, 403, "application/json", `{"error":"Request blocked by security policy.","reference":"`, "Cf-Ray"},
			{Fault500, 500, "application/json", "", ""},
			{Fault502, 502, "text/html", "502 Bad Gateway", ""},
			{Fault503, 503, "application/json", "", ""},
		} {
			t.Run(ep.ep.String()+"/"+tc.fault.String(), func(t *testing.T) {
				before := sim.Requests(ep.ep)
				sim.FailNext(ep.ep, 2, tc.fault)
				for i := 0; i < 2; i++ {
					r := ep.call()
					if r.status != tc.status || r.header.Get("Content-Type") != tc.contentType || !strings.Contains(string(r.body), tc.bodyHas) {
						t.Fatalf("call %d: %v (%s), want %d %s", i, r, r.header.Get("Content-Type"), tc.status, tc.contentType)
					}
					if tc.header != "" && r.header.Get(tc.header) == "" {
						t.Errorf("no %s header", tc.header)
					}
					if tc.fault == Fault429 {
						for k := range r.header {
							if strings.Contains(strings.ToLower(k), "ratelimit") || k == "Retry-After" {
								t.Errorf("429 has header %s", k)
							}
						}
					}
				}
				if r := ep.call(); r.status != 200 {
					t.Errorf("after the fault: %v", r)
				}
				if got := sim.Requests(ep.ep) - before; got != 3 {
					t.Errorf("requests %d, want 3", got)
				}
			})
		}
	}
	t.Run("slow", func(t *testing.T) {
		sim.FailNext(EndpointChannels, 1, FaultSlow(200*time.Millisecond))
		start := time.Now()
		if r := c.get("/public/v1/channels", q); r.status != 200 {
			t.Fatalf("slow call: %v", r)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("slow call took %v", d)
		}
	})
	t.Run("parse", func(t *testing.T) {
		for _, s := range []string{"429", "401", "403html", "403waf", "500", "502", "503", "slow:1.5s"} {
			f, err := ParseFault(s)
			if err != nil || f.String() != s {
				t.Errorf("ParseFault(%q) = %v, %v", s, f, err)
			}
		}
		for _, s := range []string{"", "418", "slow:", "slow:x"} {
			if _, err := ParseFault(s); err == nil {
				t.Errorf("ParseFault(%q) succeeded", s)
			}
		}
		for ep := EndpointToken; ep < endpointCount; ep++ {
			if got, err := ParseEndpoint(ep.String()); err != nil || got != ep {
				t.Errorf("ParseEndpoint(%q) = %v, %v", ep, got, err)
			}
		}
	})
}

func TestRequestCountersShowBatching(t *testing.T) {
	sim := startSim(t, WithStreamers(175))
	c := newAPIClient(t, sim)
	all := sim.Streamers()
	for i := 0; i < len(all); i += 50 {
		var ids []int64
		for _, st := range all[i:min(i+50, len(all))] {
			ids = append(ids, st.UserID)
		}
		if r := c.get("/public/v1/channels", idsQuery("broadcaster_user_id", ids...)); r.status != 200 {
			t.Fatal(r)
		}
	}
	if got, want := sim.Requests(EndpointChannels), (len(all)+49)/50; got != want {
		t.Errorf("channels requests %d, want ⌈%d/50⌉ = %d", got, len(all), want)
	}
	if got := sim.Requests(EndpointToken); got != 1 {
		t.Errorf("token requests %d", got)
	}
}
