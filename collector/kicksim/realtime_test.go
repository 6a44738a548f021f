package kicksim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// postWeb posts a JSON body to the sim's web API like a client of
// web.kick.com. It is safe to call from any goroutine.
func postWeb(url, body string, hdr map[string]string) (response, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func mustPostWeb(t testing.TB, url, body string) response {
	t.Helper()
	r, err := postWeb(url, body, nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return r
}

func negotiationBody(clientID string, providers ...string) string {
	var b strings.Builder
	b.WriteString(`{"client":{"id":"` + clientID + `","type":"web"},"capabilities":{"accepted_providers":[`)
	for i, p := range providers {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"provider":"` + p + `"}`)
	}
	b.WriteString(`]}}`)
	return b.String()
}

func negotiate(t testing.TB, sim *Sim, providers ...string) response {
	t.Helper()
	return mustPostWeb(t, sim.WebURL()+"/api/v1/realtime/connection", negotiationBody("9b2f1c4e-0000-4000-8000-000000000001", providers...))
}

// realtimeToken gets a token from the sim's token endpoint; status is the
// HTTP status, token "" unless it is 200.
func realtimeToken(sim *Sim, clientID string) (token string, status int, err error) {
	r, err := postWeb(sim.WebURL()+"/api/v1/realtime/auth/connection", `{"client_id":"`+clientID+`"}`, nil)
	if err != nil || r.status != http.StatusOK {
		return "", r.status, err
	}
	var tr TokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		return "", r.status, err
	}
	return tr.Data.Token, r.status, nil
}

func mustRealtimeToken(t testing.TB, sim *Sim) string {
	t.Helper()
	tok, status, err := realtimeToken(sim, "test-client")
	if err != nil || status != http.StatusOK {
		t.Fatalf("realtime token: %d %v", status, err)
	}
	return tok
}

// offered lists the providers of a negotiation answer, in order, and checks
// their credentials.
func offered(t testing.TB, sim *Sim, r response) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("negotiation: %v", r)
	}
	var nr NegotiationResponse
	mustUnmarshal(t, r.body, &nr)
	if nr.Data.Mode != "websocket" || nr.Data.Connections == nil {
		t.Errorf("negotiation answer %s: want mode websocket and a connections array", r.body)
	}
	out := []string{}
	for _, c := range nr.Data.Connections {
		out = append(out, c.Provider)
		want := RealtimeCredentials{URL: sim.CentrifugoURL()}
		if c.Provider == ProviderPusher {
			want = RealtimeCredentials{AppKey: DefaultAppKey, Cluster: "us2"}
		}
		if diff := cmp.Diff(want, c.Credentials); diff != "" {
			t.Errorf("%s credentials -want +got:\n%s", c.Provider, diff)
		}
	}
	return out
}

func TestNegotiation(t *testing.T) {
	both := []string{ProviderPusher, ProviderCentrifugo}
	for _, tc := range []struct {
		name     string
		realtime Realtime
		fault    func(*Sim)
		accepts  []string
		want     []string // nil: the Cloudflare page
	}{
		{"both offered, centrifugo first", RealtimeBoth, nil, both, []string{ProviderCentrifugo, ProviderPusher}},
		{"both offered, client takes pusher only", RealtimeBoth, nil, []string{ProviderPusher}, []string{ProviderPusher}},
		{"both offered, client takes centrifugo only", RealtimeBoth, nil, []string{ProviderCentrifugo}, []string{ProviderCentrifugo}},
		{"both offered, client takes an unknown one", RealtimeBoth, nil, []string{"ably"}, []string{}},
		{"both offered, client lists none", RealtimeBoth, nil, nil, []string{}},
		{"centrifugo only", RealtimeCentrifugo, nil, both, []string{ProviderCentrifugo}},
		{"pusher only", RealtimePusher, nil, both, []string{ProviderPusher}},
		{"pusher only, client takes centrifugo only", RealtimePusher, nil, []string{ProviderCentrifugo}, []string{}},
		{"none", RealtimeNone, nil, both, []string{}},
		{"pusher retired", RealtimeBoth, (*Sim).RetirePusher, both, []string{ProviderCentrifugo}},
		{"offer changed at run time", RealtimeBoth, func(s *Sim) { s.SetRealtimeOffer(true, false) }, both, []string{ProviderPusher}},
		{"offer withdrawn", RealtimeBoth, func(s *Sim) { s.SetRealtimeOffer(false, false) }, both, []string{}},
		{"blocked by Cloudflare", RealtimeBoth, func(s *Sim) { s.BlockNegotiation(true) }, both, nil},
		{"block lifted", RealtimeBoth, func(s *Sim) { s.BlockNegotiation(true); s.BlockNegotiation(false) }, both, []string{ProviderCentrifugo, ProviderPusher}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, WithStreamers(2), WithRealtime(tc.realtime))
			if tc.fault != nil {
				tc.fault(sim)
			}
			r := negotiate(t, sim, tc.accepts...)
			if tc.want == nil {
				requireCloudflareBlock(t, r)
				if st := sim.RealtimeStats(); st.NegotiationsBlocked != 1 || st.Negotiations != 0 {
					t.Errorf("stats %+v", st)
				}
				return
			}
			if diff := cmp.Diff(tc.want, offered(t, sim, r)); diff != "" {
				t.Errorf("offered -want +got:\n%s", diff)
			}
			if n := sim.RealtimeStats().Negotiations; n != 1 {
				t.Errorf("negotiations %d, want 1", n)
			}
		})
	}
}

func requireCloudflareBlock(t testing.TB, r response) {
	t.Helper()
	if r.status != http.StatusForbidden || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		r.header.Get("Cf-Ray") == "" || !bytes.HasPrefix(r.body, []byte("<!DOCTYPE html>")) ||
		!bytes.Contains(r.body, []byte("Attention Required! | Cloudflare")) {
		t.Errorf("want Cloudflare's 403 block page with cf-ray, got %d %v %.80q", r.status, r.header, r.body)
	}
}

func TestNegotiationBadRequests(t *testing.T) {
	sim := startSim(t, WithStreamers(2))
	for _, tc := range []struct {
		name, path, body string
		status           int
		message          string
	}{
		{"negotiation not JSON", "/api/v1/realtime/connection", `{"client":`, 400, "invalid JSON body"},
		{"negotiation without client id", "/api/v1/realtime/connection", negotiationBody("", ProviderPusher), 422, "The client.id field is required."},
		{"token not JSON", "/api/v1/realtime/auth/connection", `[`, 400, "invalid JSON body"},
		{"token without client id", "/api/v1/realtime/auth/connection", `{}`, 422, "The client_id field is required."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustPostWeb(t, sim.WebURL()+tc.path, tc.body)
			var e webError
			mustUnmarshal(t, r.body, &e)
			if r.status != tc.status || !strings.HasPrefix(e.Message, tc.message) {
				t.Errorf("%v, want %d %q", r, tc.status, tc.message)
			}
		})
	}
	if r, err := http.Get(sim.WebURL() + "/api/v1/realtime/connection"); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET negotiation: %v %v", r, err)
	} else {
		_ = r.Body.Close()
	}
}

func jwtClaims(t testing.TB, token string) rtClaims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || string(h) != `{"alg":"HS256","typ":"JWT"}` {
		t.Errorf("JWT header %q %v", h, err)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c rtClaims
	mustUnmarshal(t, p, &c)
	return c
}

func TestRealtimeTokenEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   func(*Sim)
		status  int
		wantTTL int64
	}{
		{"default ttl", nil, 200, 2700},
		{"short ttl", func(s *Sim) { s.SetRealtimeTokenTTL(1500 * time.Millisecond) }, 200, 2},
		{"refused", func(s *Sim) { s.RefuseRealtimeTokens(true) }, 403, 0},
		{"refusal lifted", func(s *Sim) { s.RefuseRealtimeTokens(true); s.RefuseRealtimeTokens(false) }, 200, 2700},
		{"blocked by Cloudflare", func(s *Sim) { s.BlockNegotiation(true) }, 0, 0},
		{"one-shot 503", func(s *Sim) { s.FailNext(EndpointRealtimeToken, 1, Fault503) }, 503, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, WithStreamers(2))
			if tc.fault != nil {
				tc.fault(sim)
			}
			r := mustPostWeb(t, sim.WebURL()+"/api/v1/realtime/auth/connection", `{"client_id":"c-1"}`)
			st := sim.RealtimeStats()
			switch tc.status {
			case 0:
				requireCloudflareBlock(t, r)
			case 200:
				var tr TokenResponse
				mustUnmarshal(t, r.body, &tr)
				c := jwtClaims(t, tr.Data.Token)
				if r.status != 200 || tr.Message != "success" || c.Sub != "c-1" || c.Exp-c.Iat != tc.wantTTL {
					t.Errorf("%v: claims %+v, want sub c-1 and ttl %d", r, c, tc.wantTTL)
				}
				if _, err := sim.rt.verify(tr.Data.Token, time.Now()); err != nil {
					t.Errorf("the sim's own token does not verify: %v", err)
				}
				if st.TokensIssued != 1 {
					t.Errorf("stats %+v", st)
				}
			case 403:
				if r.status != 403 || string(r.body) != `{"message":"Forbidden"}` || st.TokensRefused != 1 {
					t.Errorf("%v, stats %+v", r, st)
				}
			default:
				if r.status != tc.status {
					t.Errorf("%v, want %d", r, tc.status)
				}
			}
		})
	}
}

func TestRealtimeTokenVerify(t *testing.T) {
	sim := startSim(t, WithStreamers(2))
	good := mustRealtimeToken(t, sim)
	other := startSim(t, WithStreamers(2))
	foreign := mustRealtimeToken(t, other)
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","iat":1,"exp":99999999999,"jti":"1"}`)) + "." + parts[2]
	now := time.Now()
	for _, tc := range []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"valid", good, now, nil},
		{"empty", "", now, errTokenInvalid},
		{"garbage", "not.a.jwt", now, errTokenInvalid},
		{"other sim's secret", foreign, now, errTokenInvalid},
		{"forged claims", forged, now, errTokenInvalid},
		{"after exp", good, now.Add(DefaultRealtimeTokenTTL + time.Second), errTokenExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := sim.rt.verify(tc.token, tc.at); err != tc.want {
				t.Errorf("verify: %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("ExpireRealtimeTokens", func(t *testing.T) {
		sim.ExpireRealtimeTokens()
		if _, err := sim.rt.verify(good, now); err != errTokenExpired {
			t.Errorf("old token after ExpireRealtimeTokens: %v", err)
		}
		if _, err := sim.rt.verify(mustRealtimeToken(t, sim), now); err != nil {
			t.Errorf("new token after ExpireRealtimeTokens: %v", err)
		}
	})
}

// TestContractRealtime compares kicksim's negotiation and token answers
// with the captures of kick-api.md §2.7 (testdata/README.md).
func TestContractRealtime(t *testing.T) {
	for _, tc := range []struct {
		fixture  string
		realtime Realtime
		path     string
	}{
		{"realtime_connection_centrifugo.json", RealtimeCentrifugo, "/api/v1/realtime/connection"},
		{"realtime_connection_pusher.json", RealtimePusher, "/api/v1/realtime/connection"},
		{"realtime_auth_connection.json", RealtimeBoth, "/api/v1/realtime/auth/connection"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			sim := startSim(t, WithStreamers(2), WithRealtime(tc.realtime))
			// The client's request is the captured one, byte for byte.
			body := string(readFixture(t, "realtime_connection_request.json"))
			if strings.Contains(tc.path, "auth") {
				body = `{"client_id":"7c0f6a2e-3b1d-4c5e-9f8a-1d2b3c4d5e6f"}`
			}
			r := mustPostWeb(t, sim.WebURL()+tc.path, body)
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("%v (%s)", r, r.header.Get("Content-Type"))
			}
			requireSameShape(t, decodeTree(t, readFixture(t, tc.fixture)), decodeTree(t, r.body), false)
		})
	}
}

func TestRealtimeNotServed(t *testing.T) {
	for _, tc := range []struct {
		realtime   Realtime
		pusher, cf int
	}{
		{RealtimeBoth, http.StatusBadRequest, http.StatusBadRequest}, // served: a plain GET is not a WebSocket handshake
		{RealtimePusher, http.StatusBadRequest, http.StatusNotFound},
		{RealtimeCentrifugo, http.StatusNotFound, http.StatusBadRequest},
		{RealtimeNone, http.StatusNotFound, http.StatusNotFound},
	} {
		t.Run(tc.realtime.String(), func(t *testing.T) {
			sim := startSim(t, WithStreamers(2), WithRealtime(tc.realtime))
			for path, want := range map[string]int{"/app/" + DefaultAppKey + "?protocol=7": tc.pusher, centrifugoPath: tc.cf} {
				r, err := http.Get(sim.WebURL() + path)
				if err != nil {
					t.Fatal(err)
				}
				_ = r.Body.Close()
				if r.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, r.StatusCode, want)
				}
			}
		})
	}
}

func TestParseRealtime(t *testing.T) {
	for _, s := range []string{"pusher", "centrifugo", "both", "none"} {
		r, err := ParseRealtime(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRealtime(%q) = %v, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "auto", "Pusher"} {
		if _, err := ParseRealtime(s); err == nil {
			t.Errorf("ParseRealtime(%q) succeeded", s)
		}
	}
	for _, s := range []string{"alternate", "string", "object"} {
		e, err := ParseDataEncoding(s)
		if err != nil || e.String() != s {
			t.Errorf("ParseDataEncoding(%q) = %v, %v", s, e, err)
		}
	}
	if _, err := ParseDataEncoding("binary"); err == nil {
		t.Error("ParseDataEncoding(binary) succeeded")
	}
	if _, err := New(WithRealtime(Realtime(9))); err == nil {
		t.Error("New accepted an unknown Realtime")
	}
	if _, err := New(WithRealtimeTokenTTL(-time.Second)); err == nil {
		t.Error("New accepted a negative realtime token TTL")
	}
}

// TestPusherRetired: RetirePusher closes open sockets with 4001, answers
// new connects with pusher:error 4001 and close 4001, and negotiation stops
// offering Pusher.
func TestPusherRetired(t *testing.T) {
	sim := startSim(t, WithStreamers(2))
	st := sim.Streamers()[0]
	open, _ := connect(t, sim)
	open.subscribe(channelName(st))
	sim.RetirePusher()
	if got := open.closeCode(5 * time.Second); got != CloseAppNotFound {
		t.Errorf("open socket closed with %d, want %d", got, CloseAppNotFound)
	}
	c := dialPusher(t, sim.PusherURL())
	f := c.read(5 * time.Second)
	data, _ := f.Data.(map[string]any)
	if f.Event != "pusher:error" || data["code"] != float64(CloseAppNotFound) ||
		data["message"] != "App key "+DefaultAppKey+" not in this cluster. Did you forget to specify the cluster?" {
		t.Errorf("first frame after retirement %v", f.Raw)
	}
	if got := c.closeCode(5 * time.Second); got != CloseAppNotFound {
		t.Errorf("new socket closed with %d, want %d", got, CloseAppNotFound)
	}
	if diff := cmp.Diff([]string{ProviderCentrifugo}, offered(t, sim, negotiate(t, sim, ProviderPusher, ProviderCentrifugo))); diff != "" {
		t.Errorf("offer after retirement -want +got:\n%s", diff)
	}
	eventually(t, 5*time.Second, "no pusher sockets", func() bool { return sim.Sockets() == 0 })
	if st := sim.RealtimeStats(); !st.PusherRetired || st.OfferPusher || st.PusherRetiredRefusals != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestControlAPIRealtime(t *testing.T) {
	sim := startSim(t, WithStreamers(2))
	post := func(path, body string) response {
		t.Helper()
		r, err := postWeb(sim.ControlURL()+path, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		path, body string
		status     int
		check      func() bool
	}{
		{"/realtime/offer", `{"pusher":false,"centrifugo":true}`, 204, func() bool {
			st := sim.RealtimeStats()
			return !st.OfferPusher && st.OfferCentrifugo
		}},
		{"/realtime/offer", `{"pusher":`, 400, nil},
		{"/realtime/block", `{"on":true}`, 204, func() bool { return sim.rt.blocked.Load() }},
		{"/realtime/block", `{"on":false}`, 204, func() bool { return !sim.rt.blocked.Load() }},
		{"/realtime/refuse-tokens", `{"on":true}`, 204, func() bool { return sim.rt.refuseTokens.Load() }},
		{"/realtime/refuse-tokens", `{"on":false}`, 204, func() bool { return !sim.rt.refuseTokens.Load() }},
		{"/realtime/token-ttl", `{"ttl":"5s"}`, 204, func() bool { return sim.rt.ttl.Load() == int64(5*time.Second) }},
		{"/realtime/token-ttl", `{"ttl":"soon"}`, 400, nil},
		{"/realtime/token-ttl", `{"ttl":"-1s"}`, 400, nil},
		{"/realtime/expire-tokens", ``, 204, nil},
		{"/realtime/origin", `{"origin":"https://example.com"}`, 204, func() bool {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Origin", "https://example.com")
			return sim.rt.originAllowed(r)
		}},
		{"/realtime/origin", `{"origin":""}`, 204, func() bool {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Origin", "https://example.com")
			return !sim.rt.originAllowed(r)
		}},
		{"/realtime/data", `{"encoding":"object"}`, 204, func() bool { return DataEncoding(sim.rt.encoding.Load()) == DataObject }},
		{"/realtime/data", `{"encoding":"xml"}`, 400, nil},
		{"/centrifugo/close", `{"code":3011,"reason":"force reconnect"}`, 204, nil},
		{"/centrifugo/close", `{"code":1000}`, 400, nil},
		{"/centrifugo/drop", ``, 204, nil},
		{"/faults", `{"endpoint":"realtime/connection","count":1,"fault":"403html"}`, 204, nil},
		{"/faults", `{"endpoint":"centrifugo","count":1,"fault":"503"}`, 204, nil},
		{"/realtime/retire-pusher", ``, 204, func() bool { return sim.RealtimeStats().PusherRetired }},
	} {
		if r := post(tc.path, tc.body); r.status != tc.status || tc.check != nil && !tc.check() {
			t.Errorf("POST %s %s: %v, want %d and its effect", tc.path, tc.body, r, tc.status)
		}
	}
	// The queued 403 page answers the next negotiation, counted per endpoint.
	if r := negotiate(t, sim, ProviderCentrifugo); r.status != http.StatusForbidden {
		t.Errorf("negotiation after queued fault: %v", r)
	}
	r, err := http.Get(sim.ControlURL() + "/realtime")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Body.Close() }()
	var got RealtimeStats
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !got.PusherRetired || got.OfferPusher || !got.OfferCentrifugo || sim.Requests(EndpointRealtimeConnection) != 1 {
		t.Errorf("GET /control/realtime %+v, negotiation requests %d", got, sim.Requests(EndpointRealtimeConnection))
	}
}

// TestPusherRetiredDuringHandshakes: no socket outlives the retirement,
// whether it was open, opening or opened after.
func TestPusherRetiredDuringHandshakes(t *testing.T) {
	sim := startSim(t, WithStreamers(2))
	const n = 20
	codes := make(chan int, n)
	for i := range n {
		if i == n/2 {
			go sim.RetirePusher()
		}
		go func() {
			conn, resp, err := websocket.DefaultDialer.Dial(sim.PusherURL(), nil)
			if err != nil {
				codes <- -1
				return
			}
			_ = resp.Body.Close()
			defer func() { _ = conn.Close() }()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						codes <- ce.Code
					} else {
						codes <- 0
					}
					return
				}
			}
		}()
	}
	for range n {
		if code := <-codes; code != CloseAppNotFound {
			t.Errorf("a socket ended with %d, want %d", code, CloseAppNotFound)
		}
	}
	eventually(t, 5*time.Second, "no pusher sockets", func() bool { return sim.Sockets() == 0 })
}
