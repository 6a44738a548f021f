package kicksim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cfclient "github.com/centrifugal/centrifuge-go"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// cfPeer is the official Go client of the Centrifugo protocol
// (github.com/centrifugal/centrifuge-go) connected to the sim the way
// kick.com's pages connect: client name js, Origin https://kick.com, token
// from the token endpoint (fetched again whenever the client asks).
type cfPeer struct {
	c            *cfclient.Client
	pubs         chan cfclient.PublicationEvent
	connected    chan struct{}
	connecting   chan cfclient.ConnectingEvent // reconnects
	disconnected chan cfclient.DisconnectedEvent
	subscribed   chan struct{}
	getTokens    atomic.Int64
}

type cfPeerConfig struct {
	token  string            // initial token ("" = ask GetToken)
	header map[string]string // extra handshake headers; Origin https://kick.com unless set
}

func startCFPeer(t testing.TB, sim *Sim, cfg cfPeerConfig) *cfPeer {
	t.Helper()
	p := &cfPeer{
		pubs:         make(chan cfclient.PublicationEvent, 10_000),
		connected:    make(chan struct{}, 100),
		connecting:   make(chan cfclient.ConnectingEvent, 100),
		disconnected: make(chan cfclient.DisconnectedEvent, 100),
		subscribed:   make(chan struct{}, 100),
	}
	hdr := http.Header{"Origin": {KickOrigin}}
	for k, v := range cfg.header {
		hdr.Set(k, v)
	}
	p.c = cfclient.NewJsonClient(sim.CentrifugoURL(), cfclient.Config{
		Name:   "js",
		Token:  cfg.token,
		Header: hdr,
		GetToken: func(cfclient.ConnectionTokenEvent) (string, error) {
			p.getTokens.Add(1)
			tok, status, err := realtimeToken(sim, "peer-"+t.Name())
			switch {
			case err != nil:
				return "", err
			case status == http.StatusForbidden:
				return "", cfclient.ErrUnauthorized
			case status != http.StatusOK:
				return "", fmt.Errorf("token endpoint answered %d", status)
			}
			return tok, nil
		},
		MinReconnectDelay: 50 * time.Millisecond,
		MaxReconnectDelay: 500 * time.Millisecond,
	})
	p.c.OnConnected(func(cfclient.ConnectedEvent) { p.connected <- struct{}{} })
	p.c.OnConnecting(func(e cfclient.ConnectingEvent) {
		if e.Code != 0 { // 0 is Connect being called; keep reconnects only
			p.connecting <- e
		}
	})
	p.c.OnDisconnected(func(e cfclient.DisconnectedEvent) { p.disconnected <- e })
	p.c.OnError(func(e cfclient.ErrorEvent) { t.Logf("centrifuge-go error: %v", e.Error) })
	t.Cleanup(p.c.Close)
	return p
}

func (p *cfPeer) subscribe(t testing.TB, channel string) {
	t.Helper()
	sub, err := p.c.NewSubscription(channel)
	if err != nil {
		t.Fatal(err)
	}
	sub.OnPublication(func(e cfclient.PublicationEvent) { p.pubs <- e })
	sub.OnSubscribed(func(cfclient.SubscribedEvent) { p.subscribed <- struct{}{} })
	if err := sub.Subscribe(); err != nil {
		t.Fatal(err)
	}
}

func waitFor[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
	panic("unreachable")
}

// kickPublication is a Centrifugo publication of Kick: the Pusher event
// and its data, a JSON string or an object.
type kickPublication struct {
	Event        string
	DataIsString bool
	Data         any
}

func decodePublication(t testing.TB, b []byte) kickPublication {
	t.Helper()
	var raw struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	mustUnmarshal(t, b, &raw)
	p := kickPublication{Event: raw.Event}
	var s string
	if json.Unmarshal(raw.Data, &s) == nil {
		p.DataIsString = true
		p.Data = decodeTree(t, []byte(s))
	} else {
		p.Data = decodeTree(t, raw.Data)
	}
	return p
}

// TestCentrifugoClient: the official client connects, subscribes and
// receives every world change as a publication carrying the same event and
// data as the Pusher endpoint sends, data alternating string and object.
func TestCentrifugoClient(t *testing.T) {
	sim := startSim(t, WithStreamers(3))
	st := sim.Streamers()[1]
	ch := channelName(st)
	peer := startCFPeer(t, sim, cfPeerConfig{})
	peer.subscribe(t, ch)
	if err := peer.c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, peer.connected, 10*time.Second, "connected")
	waitFor(t, peer.subscribed, 10*time.Second, "subscribed")
	pusher, _ := connect(t, sim)
	pusher.subscribe(ch)

	steps := []struct {
		event  string
		act    func() error
		string bool
	}{
		{EventStreamerIsLive, func() error { return sim.GoLive(st.UserID) }, true},
		{EventLivestreamUpdated, func() error { return sim.SetTitle(st.UserID, "centrifugo & pusher") }, false},
		{EventFollowersUpdated, func() error { return sim.EmitNoise(st.UserID) }, true},
		{EventChannelSubscription, func() error { return sim.EmitNoise(st.UserID) }, false},
		{EventStopStreamBroadcast, func() error { return sim.GoOffline(st.UserID) }, true},
	}
	for _, s := range steps {
		t.Run(s.event, func(t *testing.T) {
			if err := s.act(); err != nil {
				t.Fatal(err)
			}
			pub := waitFor(t, peer.pubs, 10*time.Second, s.event+" publication")
			got := decodePublication(t, pub.Data)
			_, want := pusher.readEvent(s.event, 10*time.Second)
			if got.Event != s.event || got.DataIsString != s.string {
				t.Errorf("publication %s (data is a string: %v), want %s (%v): %s", got.Event, got.DataIsString, s.event, s.string, pub.Data)
			}
			if diff := cmp.Diff(want.Data, got.Data); diff != "" {
				t.Errorf("data differs from Pusher's -pusher +centrifugo:\n%s", diff)
			}
		})
	}
	stats := sim.RealtimeStats()
	if stats.CentrifugoConnects != 1 || stats.CentrifugoClients != 1 || stats.CentrifugoSubscriptions != 1 ||
		stats.CentrifugoPublications != 5 || stats.CentrifugoStringData != 3 || stats.CentrifugoObjectData != 2 ||
		stats.TokensIssued != 1 || sim.CentrifugoSubscriptions(ch) != 1 {
		t.Errorf("stats %+v", stats)
	}
	for _, enc := range []DataEncoding{DataObject, DataString} {
		sim.SetCentrifugoData(enc)
		if err := sim.EmitNoise(st.UserID); err != nil {
			t.Fatal(err)
		}
		if got := decodePublication(t, waitFor(t, peer.pubs, 10*time.Second, "noise").Data); got.DataIsString != (enc == DataString) {
			t.Errorf("encoding %v: data is a string: %v", enc, got.DataIsString)
		}
	}
}

// TestCentrifugoTokenRefresh: with a 1 s token ttl the client refreshes its
// token over and over on the same connection.
func TestCentrifugoTokenRefresh(t *testing.T) {
	sim := startSim(t, WithStreamers(2), WithRealtimeTokenTTL(time.Second))
	peer := startCFPeer(t, sim, cfPeerConfig{})
	if err := peer.c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, peer.connected, 10*time.Second, "connected")
	eventually(t, 30*time.Second, "3 token refreshes", func() bool { return sim.RealtimeStats().CentrifugoRefreshes >= 3 })
	st := sim.RealtimeStats()
	if st.CentrifugoConnects != 1 || st.CentrifugoRefreshRefused != 0 || st.TokensIssued < 4 || peer.getTokens.Load() < 4 {
		t.Errorf("stats %+v, GetToken calls %d: want one connection refreshed with new tokens", st, peer.getTokens.Load())
	}
	select {
	case e := <-peer.connecting:
		t.Errorf("the client reconnected (%d %s) instead of refreshing", e.Code, e.Reason)
	default:
	}
}

// TestCentrifugoTokenRefused covers the token faults as the official client
// meets them.
func TestCentrifugoTokenRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the initial token and may arm faults before connecting.
		setup func(*Sim) string
		// during runs once connected (nil: never connects).
		during func(*Sim)
		// the client ends disconnected with this code, or keeps connecting
		// (reconnects >= 1) and connects again when code is 0.
		code      uint32
		reconnect bool
	}{
		{"unknown token: disconnect 3500 invalid token", func(*Sim) string { return "not-a-kick-token" }, nil, 3500, false},
		{"expired token at connect: error 109, fresh token, connected",
			func(s *Sim) string { tok, _, _ := realtimeToken(s, "x"); s.ExpireRealtimeTokens(); return tok }, nil, 0, false},
		{"token endpoint refuses: unauthorized", func(s *Sim) string { s.RefuseRealtimeTokens(true); return "" }, nil, 1, false},
		{"tokens expired while connected: 3005, reconnect with a new one", func(*Sim) string { return "" },
			func(s *Sim) { s.ExpireRealtimeTokens() }, 0, true},
		{"tokens expired and refused while connected: 3005 then unauthorized", func(*Sim) string { return "" },
			func(s *Sim) { s.RefuseRealtimeTokens(true); s.ExpireRealtimeTokens() }, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, WithStreamers(2))
			peer := startCFPeer(t, sim, cfPeerConfig{token: tc.setup(sim)})
			if err := peer.c.Connect(); err != nil {
				t.Fatal(err)
			}
			if tc.during != nil {
				waitFor(t, peer.connected, 10*time.Second, "connected")
				tc.during(sim)
			}
			if tc.reconnect {
				e := waitFor(t, peer.connecting, 10*time.Second, "reconnecting")
				if e.Code != 3005 {
					t.Errorf("reconnecting after %d %q, want 3005 connection expired", e.Code, e.Reason)
				}
			}
			if tc.code == 0 {
				waitFor(t, peer.connected, 10*time.Second, "connected")
				return
			}
			e := waitFor(t, peer.disconnected, 10*time.Second, "disconnected")
			if e.Code != tc.code {
				t.Errorf("disconnected with %d %q, want %d", e.Code, e.Reason, tc.code)
			}
			if st := sim.RealtimeStats(); st.CentrifugoClients != 0 {
				eventually(t, 10*time.Second, "no centrifugo clients", func() bool { return sim.RealtimeStats().CentrifugoClients == 0 })
			}
		})
	}
}

// TestCentrifugoOrigin checks the Origin rule of the handshake, with a
// plain WebSocket dial and with the official client.
func TestCentrifugoOrigin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		require string
		origin  []string // nil: no Origin header
		ok      bool
	}{
		{"no Origin", "", nil, true},
		{"kick.com", "", []string{"https://kick.com"}, true},
		{"chrome extension", "", []string{"chrome-extension://abcdefghijklmnop"}, false},
		{"firefox extension", "", []string{"moz-extension://1234-5678"}, false},
		{"null", "", []string{"null"}, false},
		{"another site", "", []string{"https://example.com"}, false},
		{"www.kick.com", "", []string{"https://www.kick.com"}, false},
		{"required and sent", "https://kick.com", []string{"https://kick.com"}, true},
		{"required and missing", "https://kick.com", nil, false},
		{"required other", "https://example.com", []string{"https://kick.com"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, WithStreamers(2))
			sim.RequireOrigin(tc.require)
			hdr := http.Header{}
			if tc.origin != nil {
				hdr["Origin"] = tc.origin
			}
			conn, resp, err := websocket.DefaultDialer.Dial(sim.CentrifugoURL(), hdr)
			if conn != nil {
				_ = conn.Close()
			}
			if resp != nil {
				_ = resp.Body.Close()
			}
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			if tc.ok && (err != nil || status != http.StatusSwitchingProtocols) || !tc.ok && status != http.StatusForbidden {
				t.Errorf("handshake: %d %v, want accepted: %v (403 when refused)", status, err, tc.ok)
			}
		})
	}
	t.Run("official client refused", func(t *testing.T) {
		sim := startSim(t, WithStreamers(2))
		peer := startCFPeer(t, sim, cfPeerConfig{header: map[string]string{"Origin": "chrome-extension://abc"}})
		// The first dial fails with the 403, then it keeps retrying; none of
		// its attempts gets through.
		if err := peer.c.Connect(); err == nil || !strings.Contains(err.Error(), "bad handshake") {
			t.Errorf("Connect: %v, want the refused handshake", err)
		}
		eventually(t, 10*time.Second, "3 refused handshakes", func() bool { return sim.Requests(EndpointCentrifugo) >= 3 })
		if st := sim.RealtimeStats(); st.CentrifugoConnects != 0 {
			t.Errorf("connected through the Origin rule: %+v", st)
		}
	})
}

// cfWire is a raw WebSocket speaking Centrifugo's JSON protocol by hand, to
// check the wire bytes of kick-api.md §2.7.
type cfWire struct {
	t    testing.TB
	conn *websocket.Conn
	msgs chan []byte // one JSON message each (frames split on newlines)
	// frames counts WebSocket frames, multi counts frames with several
	// messages, pings the server pings answered.
	frames, multi, pings atomic.Int64
}

func dialCFWire(t testing.TB, sim *Sim) *cfWire {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(sim.CentrifugoURL(), http.Header{"Origin": {KickOrigin}})
	if err != nil {
		t.Fatalf("dial %s: %v", sim.CentrifugoURL(), err)
	}
	_ = resp.Body.Close()
	w := &cfWire{t: t, conn: conn, msgs: make(chan []byte, 10_000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(w.msgs)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			w.frames.Add(1)
			lines := bytes.Split(b, []byte("\n"))
			if len(lines) > 1 {
				w.multi.Add(1)
			}
			for _, l := range lines {
				if len(l) > 0 {
					w.msgs <- l
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return w
}

func (w *cfWire) send(s string) {
	w.t.Helper()
	if err := w.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// reply reads until the reply to command id, answering server pings
// ({}) with {} as clients must.
func (w *cfWire) reply(id int, d time.Duration) map[string]any {
	w.t.Helper()
	out := w.read(d, func(m map[string]any) bool { return m["id"] == float64(id) })
	return out[len(out)-1]
}

// read reads messages until done says so, answering server pings with {},
// and returns the messages done was called on, in order.
func (w *cfWire) read(d time.Duration, done func(map[string]any) bool) []map[string]any {
	w.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var out []map[string]any
	for {
		select {
		case b, ok := <-w.msgs:
			if !ok {
				w.t.Fatal("connection closed")
			}
			if string(b) == "{}" {
				w.pings.Add(1)
				w.send("{}")
				continue
			}
			m := decodeTree(w.t, b).(map[string]any)
			out = append(out, m)
			if done(m) {
				return out
			}
		case <-timer.C:
			w.t.Fatalf("no expected message within %v (got %v)", d, out)
		}
	}
}

// TestCentrifugoWire checks the JSON protocol on the wire: connect reply
// with the token's ttl, subscribe, the push of a publication against the
// captured frames (testdata/centrifugo_push_frames.jsonl, string and object
// data), and server pings answered with {} keeping the connection.
func TestCentrifugoWire(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for two server pings, 4 s apart")
	}
	sim := startSim(t, WithStreamers(3), WithRealtimeTokenTTL(90*time.Second), WithCentrifugoPing(4*time.Second))
	sts := sim.Streamers()[:2]
	w := dialCFWire(t, sim)
	w.send(`{"connect":{"token":"` + mustRealtimeToken(t, sim) + `","name":"js"},"id":1}`)
	rep := w.reply(1, 10*time.Second)
	conn, _ := rep["connect"].(map[string]any)
	if conn == nil || conn["expires"] != true || conn["client"] == "" || conn["pong"] != true || conn["ping"] != float64(4) {
		t.Fatalf("connect reply %v: want expires, a client id, ping 4 and pong", rep)
	}
	if ttl, _ := conn["ttl"].(float64); ttl < 85 || ttl > 90 {
		t.Errorf("connect reply ttl %v, want the token's 90 s", conn["ttl"])
	}
	for i, st := range sts {
		w.send(fmt.Sprintf(`{"subscribe":{"channel":"%s"},"id":%d}`, channelName(st), i+2))
		if rep := w.reply(i+2, 10*time.Second); rep["subscribe"] == nil {
			t.Fatalf("subscribe reply %v", rep)
		}
	}
	// Survive server pings by answering them (the pong timeout is 2 s).
	w.awaitPings(2, 30*time.Second)
	for i, enc := range []DataEncoding{DataString, DataObject} {
		sim.SetCentrifugoData(enc)
		if err := sim.GoLive(sts[i].UserID); err != nil {
			t.Fatal(err)
		}
	}
	var pushes []map[string]any
	w.read(10*time.Second, func(m map[string]any) bool {
		if m["push"] != nil {
			pushes = append(pushes, m)
		}
		return len(pushes) == 2
	})

	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, "centrifugo_push_frames.jsonl")))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		want := decodeTree(t, sc.Bytes()).(map[string]any)
		got := pushes[i]
		requireSameShape(t, withoutData(want), withoutData(got), false)
		if ch := got["push"].(map[string]any)["channel"]; ch != channelName(sts[i]) {
			t.Errorf("push %d on %v, want %s", i, ch, channelName(sts[i]))
		}
		wp := decodePublication(t, marshal(want["push"].(map[string]any)["pub"].(map[string]any)["data"]))
		gp := decodePublication(t, marshal(got["push"].(map[string]any)["pub"].(map[string]any)["data"]))
		if gp.Event != wp.Event || gp.DataIsString != wp.DataIsString {
			t.Errorf("push %d: %v, want like %s", i, got, sc.Bytes())
		}
		requireSameShape(t, wp.Data, gp.Data, false)
	}
	if st := sim.RealtimeStats(); st.CentrifugoClients != 1 || st.CentrifugoConnects != 1 {
		t.Errorf("the connection did not survive the pings: %+v", st)
	}
	t.Logf("%d frames, %d with several messages", w.frames.Load(), w.multi.Load())
}

// awaitPings answers server pings until n more have come; any other
// message fails the test.
func (w *cfWire) awaitPings(n int64, d time.Duration) {
	w.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for want := w.pings.Load() + n; w.pings.Load() < want; {
		select {
		case b, ok := <-w.msgs:
			if !ok {
				w.t.Fatal("connection closed while waiting for pings")
			}
			if string(b) != "{}" {
				w.t.Fatalf("unexpected message %s", b)
			}
			w.pings.Add(1)
			w.send("{}")
		case <-timer.C:
			w.t.Fatalf("fewer than %d server pings within %v", n, d)
		}
	}
}

// withoutData drops the publication's inner data, compared separately.
func withoutData(frame map[string]any) map[string]any {
	b := marshal(frame)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	pub := c["push"].(map[string]any)["pub"].(map[string]any)["data"].(map[string]any)
	delete(pub, "data")
	return c
}

// TestCentrifugoClose: CloseCentrifugo disconnects with the given code
// (the client reconnects on a reconnect code, stops on a terminal one);
// DropCentrifugo cuts the connection and the client reconnects.
func TestCentrifugoClose(t *testing.T) {
	sim := startSim(t, WithStreamers(2))
	peer := startCFPeer(t, sim, cfPeerConfig{})
	if err := peer.c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, peer.connected, 10*time.Second, "connected")
	sim.CloseCentrifugo(3011, "force reconnect")
	if e := waitFor(t, peer.connecting, 10*time.Second, "reconnecting"); e.Code != 3011 {
		t.Errorf("reconnecting after %d %q, want 3011", e.Code, e.Reason)
	}
	waitFor(t, peer.connected, 10*time.Second, "connected again")
	sim.CloseCentrifugo(3503, "force disconnect")
	if e := waitFor(t, peer.disconnected, 10*time.Second, "disconnected"); e.Code != 3503 {
		t.Errorf("disconnected with %d %q, want 3503", e.Code, e.Reason)
	}
	if err := peer.c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, peer.connected, 10*time.Second, "connected after Connect")
	sim.DropCentrifugo()
	if e := waitFor(t, peer.connecting, 10*time.Second, "reconnecting after the drop"); e.Code != 1 {
		t.Errorf("reconnecting after %d %q, want 1 (transport closed)", e.Code, e.Reason)
	}
	waitFor(t, peer.connected, 10*time.Second, "connected after the drop")
	if got := sim.RealtimeStats().CentrifugoConnects; got != 4 {
		t.Errorf("connects %d, want 4", got)
	}
}

// TestCentrifugoCloseRightAfterConnect: a client that has just read its
// connect reply is closed too. The library writes the reply before it runs
// the connect handler, so CloseCentrifugo must not rely on the handler
// having run (a client missed this way stayed connected).
func TestCentrifugoCloseRightAfterConnect(t *testing.T) {
	sim := startSim(t, WithStreamers(1))
	for i := range 20 {
		conn, resp, err := websocket.DefaultDialer.Dial(sim.CentrifugoURL(), http.Header{"Origin": {KickOrigin}})
		if err != nil {
			t.Fatalf("dial %s: %v", sim.CentrifugoURL(), err)
		}
		_ = resp.Body.Close()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"connect":{"token":"`+mustRealtimeToken(t, sim)+`"},"id":1}`)); err != nil {
			t.Fatalf("write connect: %v", err)
		}
		if _, b, err := conn.ReadMessage(); err != nil || !bytes.Contains(b, []byte(`"id":1`)) {
			t.Fatalf("connect %d: reply %s, %v", i, b, err)
		}
		// Read meanwhile: the server waits for the answer to its close frame.
		closed := make(chan error, 1)
		go func() {
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					closed <- err
					return
				}
			}
		}()
		sim.CloseCentrifugo(3503, "force disconnect")
		err = <-closed
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 3503 {
			t.Fatalf("connect %d: read after CloseCentrifugo: %v, want close 3503", i, err)
		}
		_ = conn.Close()
	}
}

var errNoPublication = errors.New("no publication")

// BenchmarkCentrifugoBurst measures kicksim Centrifugo publish → official
// client receive latency, one publication at a time and in bursts of
// go-live/offline changes on 20 subscribed channels (p50/p99 per
// publication, measured from the change to the client's handler).
func BenchmarkCentrifugoBurst(b *testing.B) {
	for _, burst := range []int{1, 200} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) { benchCentrifugoBurst(b, burst) })
	}
}

func benchCentrifugoBurst(b *testing.B, burst int) {
	const channels = 20
	sim := Start(b, WithStreamers(channels))
	peer := startCFPeer(b, sim, cfPeerConfig{})
	sts := sim.Streamers()
	for _, st := range sts {
		peer.subscribe(b, channelName(st))
	}
	if err := peer.c.Connect(); err != nil {
		b.Fatal(err)
	}
	waitFor(b, peer.connected, 10*time.Second, "connected")
	for range sts {
		waitFor(b, peer.subscribed, 10*time.Second, "subscribed")
	}
	var lat []time.Duration
	sent := make([]time.Time, burst)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range burst {
			st := sts[(i*burst+j)%channels]
			sent[j] = time.Now()
			var err error
			if cur, _ := sim.Streamer(st.UserID); cur.Live {
				err = sim.GoOffline(st.UserID)
			} else {
				err = sim.GoLive(st.UserID)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		for j := range burst {
			select {
			case <-peer.pubs:
				lat = append(lat, time.Since(sent[j]))
			case <-time.After(30 * time.Second):
				b.Fatal(errNoPublication)
			}
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}
