package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cloudflarePage is the start of the page Cloudflare answers a blocked
// request with (kick-api.md §2.6).
const cloudflarePage = `<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>Sorry, you have been blocked</body></html>`

// web answers the negotiation and token endpoints as given.
func web(t *testing.T, connection, token http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+connectionPath, connection)
	mux.HandleFunc("POST "+tokenPath, token)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func answer(status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestOffers(t *testing.T) {
	both := `{"data":{"connections":[{"provider":"centrifugo","credentials":{"url":"wss://rt.example/connection/websocket"}},{"provider":"pusher","credentials":{"app_key":"k1","cluster":"us2"}}],"mode":"websocket"}}`
	tests := []struct {
		name    string
		h       http.HandlerFunc
		want    []Offer
		wantErr string
	}{
		{name: "both offered", h: answer(200, "application/json", both), want: []Offer{
			{Provider: Centrifugo, URL: "wss://rt.example/connection/websocket", Negotiated: true},
			{Provider: Pusher, AppKey: "k1", Cluster: "us2", Negotiated: true},
		}},
		{name: "pusher only", h: answer(200, "application/json", `{"data":{"connections":[{"provider":"pusher","credentials":{"app_key":"32cbd69e4b950bf97679","cluster":"us2"}}]}}`),
			want: []Offer{{Provider: Pusher, AppKey: "32cbd69e4b950bf97679", Cluster: "us2", Negotiated: true}}},
		{name: "unknown providers only", h: answer(200, "application/json", `{"data":{"connections":[{"provider":"ably","credentials":{}}]}}`), wantErr: "negotiation: 200 no provider kickmon speaks offered"},
		{name: "Cloudflare 403 page", h: answer(403, "text/html; charset=UTF-8", cloudflarePage, "cf-ray", "8a1b2c3d4e5f-AMS"), wantErr: "negotiation: 403 blocked"},
		{name: "403 page without headers", h: answer(403, "", cloudflarePage), wantErr: "negotiation: 403 blocked"},
		{name: "404", h: answer(404, "application/json", `{"message":"Not Found"}`), wantErr: "negotiation: 404 Not Found"},
		{name: "410 without a body", h: answer(410, "text/plain", ""), wantErr: "negotiation: 410 gone"},
		{name: "HTML with 200", h: answer(200, "text/html", cloudflarePage), wantErr: "negotiation: 200 blocked"},
		{name: "bad JSON", h: answer(200, "application/json", `{"data":[`), wantErr: "negotiation: 200 bad JSON answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := web(t, tt.h, answer(500, "", ""))
			n := &Negotiator{WebURL: srv.URL}
			got, err := n.Offers(context.Background(), []string{Pusher, Centrifugo})
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Offers = %v, %v; want error %q", got, err, tt.wantErr)
				}
				var ne *NegotiationError
				if !errors.As(err, &ne) {
					t.Errorf("error %T is not a *NegotiationError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("offers (-want +got):\n%s", diff)
			}
		})
	}
}

// The request is kick.com's: a made-up client id (the same for tokens),
// type web, the accepted providers, and the configured Origin.
func TestNegotiationRequest(t *testing.T) {
	var body struct {
		Client struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"client"`
		Capabilities struct {
			AcceptedProviders []struct {
				Provider string `json:"provider"`
			} `json:"accepted_providers"`
		} `json:"capabilities"`
	}
	var origin, tokenClient, tokenOrigin string
	srv := web(t, func(w http.ResponseWriter, r *http.Request) {
		origin = r.Header.Get("Origin")
		_ = json.NewDecoder(r.Body).Decode(&body)
		answer(200, "application/json", `{"data":{"connections":[{"provider":"centrifugo","credentials":{"url":"wss://x/connection/websocket"}}]}}`)(w, r)
	}, func(w http.ResponseWriter, r *http.Request) {
		tokenOrigin = r.Header.Get("Origin")
		var b struct {
			ClientID string `json:"client_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		tokenClient = b.ClientID
		// a JWT whose payload says exp 1900000000
		answer(200, "application/json", `{"data":{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxOTAwMDAwMDAwfQ.c2ln"},"message":"success"}`)(w, r)
	})
	n := &Negotiator{WebURL: srv.URL + "/", Origin: DefaultOrigin}
	if _, err := n.Offers(context.Background(), []string{Pusher, Centrifugo}); err != nil {
		t.Fatal(err)
	}
	tok, exp, err := n.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if body.Client.Type != "web" || len(body.Client.ID) != 36 || len(body.Capabilities.AcceptedProviders) != 2 ||
		body.Capabilities.AcceptedProviders[0].Provider != Pusher || body.Capabilities.AcceptedProviders[1].Provider != Centrifugo {
		t.Errorf("negotiation body %+v", body)
	}
	if origin != DefaultOrigin || tokenOrigin != DefaultOrigin {
		t.Errorf("Origin %q, %q; want %q", origin, tokenOrigin, DefaultOrigin)
	}
	if tokenClient != body.Client.ID {
		t.Errorf("token client id %q; want the negotiation's %q", tokenClient, body.Client.ID)
	}
	if !strings.HasPrefix(tok, "eyJ") || !exp.Equal(time.Unix(1900000000, 0)) {
		t.Errorf("token %q expiring %v", tok, exp)
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name   string
		h      http.HandlerFunc
		want   string
		status int
	}{
		{"refused", answer(403, "application/json", `{"message":"Forbidden"}`), "token: 403 Forbidden", 403},
		{"Cloudflare", answer(403, "text/html", cloudflarePage, "cf-ray", "1"), "token: 403 blocked", 403},
		{"no token", answer(200, "application/json", `{"data":{}}`), "token: 200 answer has no token", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := web(t, answer(500, "", ""), tt.h)
			_, _, err := (&Negotiator{WebURL: srv.URL}).Token(context.Background())
			var ne *NegotiationError
			if !errors.As(err, &ne) || err.Error() != tt.want || ne.Status != tt.status {
				t.Errorf("Token error %v; want %q (status %d)", err, tt.want, tt.status)
			}
		})
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := (&Negotiator{WebURL: srv.URL}).Offers(context.Background(), []string{Pusher})
	if err == nil || !strings.HasPrefix(err.Error(), "negotiation: dial tcp") || strings.Contains(err.Error(), srv.URL) {
		t.Errorf("network error %v; want negotiation: dial tcp …, without the URL", err)
	}
}

func TestPusherURL(t *testing.T) {
	tests := []struct{ template, key, cluster, want string }{
		{"wss://ws-us2.pusher.com/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false", "newkey", "eu",
			"wss://ws-eu.pusher.com/app/newkey?protocol=7&client=js&version=8.4.0&flash=false"},
		{"ws://127.0.0.1:4567/app/simkey?protocol=7", "simkey2", "us2", "ws://127.0.0.1:4567/app/simkey2?protocol=7"},
		{"wss://ws-us2.pusher.com/app/old?protocol=7", "k", "bad/cluster", "wss://ws-us2.pusher.com/app/k?protocol=7"},
	}
	for _, tt := range tests {
		got, err := PusherURL(tt.template, tt.key, tt.cluster)
		if err != nil || got != tt.want {
			t.Errorf("PusherURL(%q, %q, %q) = %q, %v; want %q", tt.template, tt.key, tt.cluster, got, err, tt.want)
		}
	}
	if _, err := PusherURL("wss://example.com/socket", "k", "us2"); err == nil {
		t.Error("PusherURL accepted a template without /app/{key}")
	}
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"wss://rt.example/connection/websocket", false, true},
		{"ws://127.0.0.1:1/connection/websocket", false, false},
		{"ws://127.0.0.1:1/connection/websocket", true, true},
		{"ftp://x/", true, false},
		{"/relative", true, false},
	} {
		if err := CheckURL(tt.url, tt.insecure); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, %v) = %v; want ok %v", tt.url, tt.insecure, err, tt.ok)
		}
	}
}
