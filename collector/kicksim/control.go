package kicksim

import (
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"
)

// The control API is JSON over HTTP under /control, for loopback peers only.
// Every mutation answers 204 on success and {"error":"…"} otherwise.
//
//	GET  /control/env                          {"env":["KICK_AUTH_URL=…",…]}
//	GET  /control/streamers                    [Streamer…]
//	GET  /control/streamers/{user_id}          Streamer
//	POST /control/streamers/{user_id}/live
//	POST /control/streamers/{user_id}/offline
//	POST /control/streamers/{user_id}/ban
//	POST /control/streamers/{user_id}/noise
//	POST /control/streamers/{user_id}/rename   {"slug":"new-slug"}
//	POST /control/streamers/{user_id}/title    {"title":"…"}
//	POST /control/streamers/{user_id}/category {"category_id":15}
//	POST /control/streamers/{user_id}/viewers  {"viewers":123}
//	POST /control/faults                       {"endpoint":"channels","count":3,"fault":"429"} (fault: 429 401 403html 403waf 500 502 503 slow:2s)
//	DELETE /control/faults
//	GET  /control/requests                     {"channels":12,…}
//	POST /control/tokens/revoke
//	GET  /control/sockets                      {"sockets":3}
//	POST /control/sockets/drop
//	POST /control/sockets/stall                {"on":true}
//	POST /control/sockets/close                {"code":4200,"reason":"…"}
//	GET  /control/subscriptions?channel=channel.123  {"channel":"…","sockets":1,"centrifugo":1}
//	GET  /control/realtime                     RealtimeStats
//	POST /control/realtime/offer               {"pusher":true,"centrifugo":false}
//	POST /control/realtime/retire-pusher
//	POST /control/realtime/block               {"on":true}
//	POST /control/realtime/refuse-tokens       {"on":true}
//	POST /control/realtime/token-ttl           {"ttl":"5s"}
//	POST /control/realtime/expire-tokens
//	POST /control/realtime/origin              {"origin":"https://kick.com"} ("" = Kick's rule)
//	POST /control/realtime/data                {"encoding":"alternate"} (alternate, string, object)
//	POST /control/centrifugo/close             {"code":3011,"reason":"…"}
//	POST /control/centrifugo/drop
//	GET  /control/webhooks                     {"url":"…","stats":{…},"subscriptions":[…]}
//	POST /control/webhooks/url                 {"url":"http://127.0.0.1:9000/webhooks/kick"}
//	POST /control/webhooks/drop
//	GET  /control/truth?since=SEQ              [Transition…] with Seq > SEQ
//	POST /control/rate                         {"rate":1000} (automatic scenario, changes/s; 0 pauses)

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !loopback(r.RemoteAddr) {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "control API is for loopback peers only"})
				return
			}
			if err := f(w, r); err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, ErrUnknownStreamer) {
					status = http.StatusNotFound
				}
				writeJSON(w, status, map[string]string{"error": err.Error()})
			}
		})
	}
	h("GET /control/env", func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, map[string][]string{"env": s.Env()})
		return nil
	})
	h("GET /control/streamers", func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, s.Streamers())
		return nil
	})
	h("GET /control/streamers/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		st, found := s.Streamer(id)
		if !found {
			return ErrUnknownStreamer
		}
		writeJSON(w, http.StatusOK, st)
		return nil
	})
	action := func(name string, f func(id int64, r *http.Request) error) {
		h("POST /control/streamers/{id}/"+name, func(w http.ResponseWriter, r *http.Request) error {
			id, err := pathID(r)
			if err != nil {
				return err
			}
			if err := f(id, r); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	}
	action("live", func(id int64, _ *http.Request) error { return s.GoLive(id) })
	action("offline", func(id int64, _ *http.Request) error { return s.GoOffline(id) })
	action("ban", func(id int64, _ *http.Request) error { return s.Ban(id) })
	action("noise", func(id int64, _ *http.Request) error { return s.EmitNoise(id) })
	action("rename", func(id int64, r *http.Request) error {
		var b struct{ Slug string }
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		return s.Rename(id, b.Slug)
	})
	action("title", func(id int64, r *http.Request) error {
		var b struct{ Title string }
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		return s.SetTitle(id, b.Title)
	})
	action("category", func(id int64, r *http.Request) error {
		var b struct {
			CategoryID int64 `json:"category_id"`
		}
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		return s.SetCategory(id, b.CategoryID)
	})
	action("viewers", func(id int64, r *http.Request) error {
		var b struct{ Viewers int }
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		return s.SetViewers(id, b.Viewers)
	})
	h("POST /control/faults", func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			Endpoint string
			Count    int
			Fault    string
		}
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		ep, err := ParseEndpoint(b.Endpoint)
		if err != nil {
			return err
		}
		f, err := ParseFault(b.Fault)
		if err != nil {
			return err
		}
		if b.Count <= 0 {
			return errors.New("count must be positive")
		}
		s.FailNext(ep, b.Count, f)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("DELETE /control/faults", func(w http.ResponseWriter, _ *http.Request) error {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /control/requests", func(w http.ResponseWriter, _ *http.Request) error {
		out := make(map[string]int)
		for ep := EndpointToken; ep < endpointCount; ep++ {
			out[ep.String()] = s.Requests(ep)
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
	noBody := func(pattern string, f func()) {
		h(pattern, func(w http.ResponseWriter, _ *http.Request) error {
			f()
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	}
	noBody("POST /control/tokens/revoke", s.RevokeTokens)
	noBody("POST /control/sockets/drop", s.DropSockets)
	noBody("POST /control/webhooks/drop", s.DropWebhookSubscriptions)
	h("GET /control/sockets", func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]int{"sockets": s.Sockets()})
		return nil
	})
	h("POST /control/sockets/stall", func(w http.ResponseWriter, r *http.Request) error {
		var b struct{ On bool }
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		s.StallSockets(b.On)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("POST /control/sockets/close", func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			Code   int
			Reason string
		}
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		if b.Code < 1000 || b.Code > 4999 {
			return errors.New("code must be a WebSocket close code (1000-4999)")
		}
		s.CloseSockets(b.Code, b.Reason)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /control/subscriptions", func(w http.ResponseWriter, r *http.Request) error {
		ch := r.URL.Query().Get("channel")
		writeJSON(w, http.StatusOK, map[string]any{"channel": ch, "sockets": s.Subscriptions(ch), "centrifugo": s.CentrifugoSubscriptions(ch)})
		return nil
	})
	s.realtimeControlRoutes(h)
	h("GET /control/webhooks", func(w http.ResponseWriter, _ *http.Request) error {
		s.hooks.mu.Lock()
		url := s.hooks.url
		s.hooks.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"url": url, "stats": s.WebhookStats(), "subscriptions": s.WebhookSubscriptions()})
		return nil
	})
	h("POST /control/webhooks/url", func(w http.ResponseWriter, r *http.Request) error {
		var b struct{ URL string }
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		s.SetWebhookURL(b.URL)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("POST /control/rate", func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			Rate *float64 `json:"rate"`
		}
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		if b.Rate == nil || *b.Rate < 0 || math.IsNaN(*b.Rate) || math.IsInf(*b.Rate, 0) {
			return errors.New(`rate must be a number >= 0, as in {"rate":1000}`)
		}
		s.SetEventRate(*b.Rate)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /control/truth", func(w http.ResponseWriter, r *http.Request) error {
		var since int64
		if v := r.URL.Query().Get("since"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errors.New("since must be an integer")
			}
			since = n
		}
		out := make([]Transition, 0)
		for _, t := range s.Truth() {
			if t.Seq > since {
				out = append(out, t)
			}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

type controlHandler = func(pattern string, f func(w http.ResponseWriter, r *http.Request) error)

// realtimeControlRoutes are the control routes of the realtime faults.
func (s *Sim) realtimeControlRoutes(h controlHandler) {
	// post runs f and answers 204.
	post := func(pattern string, f func(r *http.Request) error) {
		h("POST "+pattern, func(w http.ResponseWriter, r *http.Request) error {
			if err := f(r); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	}
	h("GET /control/realtime", func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, s.RealtimeStats())
		return nil
	})
	post("/control/realtime/offer", func(r *http.Request) error {
		b, err := decodeAs[struct{ Pusher, Centrifugo bool }](r)
		if err == nil {
			s.SetRealtimeOffer(b.Pusher, b.Centrifugo)
		}
		return err
	})
	post("/control/realtime/retire-pusher", func(*http.Request) error { s.RetirePusher(); return nil })
	post("/control/realtime/block", func(r *http.Request) error {
		b, err := decodeAs[struct{ On bool }](r)
		if err == nil {
			s.BlockNegotiation(b.On)
		}
		return err
	})
	post("/control/realtime/refuse-tokens", func(r *http.Request) error {
		b, err := decodeAs[struct{ On bool }](r)
		if err == nil {
			s.RefuseRealtimeTokens(b.On)
		}
		return err
	})
	post("/control/realtime/token-ttl", func(r *http.Request) error {
		b, err := decodeAs[struct{ TTL string }](r)
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(b.TTL)
		if err != nil || d <= 0 {
			return errors.New(`ttl must be a positive duration such as "5s"`)
		}
		s.SetRealtimeTokenTTL(d)
		return nil
	})
	post("/control/realtime/expire-tokens", func(*http.Request) error { s.ExpireRealtimeTokens(); return nil })
	post("/control/centrifugo/drop", func(*http.Request) error { s.DropCentrifugo(); return nil })
	post("/control/realtime/origin", func(r *http.Request) error {
		b, err := decodeAs[struct{ Origin string }](r)
		if err == nil {
			s.RequireOrigin(b.Origin)
		}
		return err
	})
	post("/control/realtime/data", func(r *http.Request) error {
		b, err := decodeAs[struct{ Encoding string }](r)
		if err != nil {
			return err
		}
		e, err := ParseDataEncoding(b.Encoding)
		if err != nil {
			return err
		}
		s.SetCentrifugoData(e)
		return nil
	})
	post("/control/centrifugo/close", func(r *http.Request) error {
		b, err := decodeAs[struct {
			Code   int
			Reason string
		}](r)
		if err != nil {
			return err
		}
		if b.Code < 3000 || b.Code > 4999 {
			return errors.New("code must be a Centrifugo disconnect code (3000-4999)")
		}
		s.CloseCentrifugo(b.Code, b.Reason)
		return nil
	})
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, errors.New("user id must be an integer")
	}
	return id, nil
}

func decodeAs[T any](r *http.Request) (T, error) {
	var v T
	err := decodeBody(r, &v)
	return v, err
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(v); err != nil {
		return errors.New("invalid JSON body: " + err.Error())
	}
	return nil
}
