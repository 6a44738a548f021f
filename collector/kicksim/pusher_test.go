package kicksim

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// wsClient is a plain gorilla/websocket Pusher client. A goroutine reads
// frames into a channel (gorilla connections cannot be read again after a
// read deadline passes).
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan []byte
	pongs  chan string
	err    error // set before frames is closed
}

func dialPusher(t testing.TB, rawURL string) *wsClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(rawURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", rawURL, err)
	}
	_ = resp.Body.Close()
	c := &wsClient{t: t, conn: conn, frames: make(chan []byte, 1024), pongs: make(chan string, 16)}
	conn.SetPongHandler(func(s string) error {
		select {
		case c.pongs <- s:
		default:
		}
		return nil
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.frames)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			c.frames <- b
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return c
}

// connect dials the sim and reads connection_established.
func connect(t testing.TB, sim *Sim) (*wsClient, decodedFrame) {
	t.Helper()
	c := dialPusher(t, sim.PusherURL())
	f := c.read(time.Second)
	if f.Event != "pusher:connection_established" {
		t.Fatalf("first frame %q, want pusher:connection_established", f.Event)
	}
	return c, f
}

var errReadTimeout = errors.New("read timeout")

func (c *wsClient) readRaw(d time.Duration) ([]byte, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case b, ok := <-c.frames:
		if !ok {
			return nil, c.err
		}
		return b, nil
	case <-timer.C:
		return nil, errReadTimeout
	}
}

func (c *wsClient) read(d time.Duration) decodedFrame {
	c.t.Helper()
	b, err := c.readRaw(d)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return decodeFrame(c.t, b)
}

// readEvent reads until a frame with this event arrives, failing on timeout.
func (c *wsClient) readEvent(event string, d time.Duration) ([]byte, decodedFrame) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, err := c.readRaw(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", event, err)
		}
		if f := decodeFrame(c.t, b); f.Event == event {
			return b, f
		}
	}
}

func (c *wsClient) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) subscribe(channel string) {
	c.t.Helper()
	c.send(`{"event":"pusher:subscribe","data":{"auth":"","channel":"` + channel + `"}}`)
	_, f := c.readEvent("pusher_internal:subscription_succeeded", time.Second)
	if f.Channel != channel {
		c.t.Fatalf("subscription_succeeded for %q, want %q", f.Channel, channel)
	}
}

// closeCode reads until the socket closes and returns the close code (1006
// for a close without a close frame).
func (c *wsClient) closeCode(d time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, err := c.readRaw(time.Until(deadline))
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if errors.Is(err, errReadTimeout) {
			c.t.Fatalf("socket still open after %v", d)
		}
		c.t.Fatalf("read: %v", err)
	}
}

func channelName(st Streamer) string { return "channel." + strconv.FormatInt(st.ChannelID, 10) }

func TestPusherProtocol(t *testing.T) {
	sim := startSim(t, WithStreamers(5))
	st := sim.Streamers()[0]
	ch := channelName(st)
	c, est := connect(t, sim)

	t.Run("connection_established", func(t *testing.T) {
		if !est.DataIsString {
			t.Fatal("data is not a JSON string")
		}
		d := est.Data.(map[string]any)
		if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(d["socket_id"].(string)) {
			t.Errorf("socket_id %q", d["socket_id"])
		}
		if d["activity_timeout"] != float64(120) {
			t.Errorf("activity_timeout %v, want 120", d["activity_timeout"])
		}
	})
	t.Run("subscribe with object and string data", func(t *testing.T) {
		c.subscribe(ch)
		c.send(`{"event":"pusher:subscribe","data":"{\"auth\":\"\",\"channel\":\"channel_` + strconv.FormatInt(st.ChannelID, 10) + `\"}"}`)
		_, f := c.readEvent("pusher_internal:subscription_succeeded", time.Second)
		if f.Channel != "channel_"+strconv.FormatInt(st.ChannelID, 10) || !f.DataIsString {
			t.Errorf("got %+v", f.Raw)
		}
		eventually(t, time.Second, "subscription count", func() bool { return sim.Subscriptions(ch) == 1 })
	})
	t.Run("client ping gets pong", func(t *testing.T) {
		c.send(`{"event":"pusher:ping","data":{}}`)
		b, _ := c.readEvent("pusher:pong", time.Second)
		if string(b) != `{"event":"pusher:pong","data":"{}"}` {
			t.Errorf("pong frame %s", b)
		}
	})
	t.Run("websocket ping frame gets pong frame", func(t *testing.T) {
		if err := c.conn.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		c.send(`{"event":"pusher:ping","data":{}}`)
		c.readEvent("pusher:pong", time.Second) // pong control frames are handled while reading
		select {
		case s := <-c.pongs:
			if s != "hi" {
				t.Errorf("pong payload %q", s)
			}
		default:
			t.Error("no pong frame")
		}
	})
	t.Run("live, update, noise, offline", func(t *testing.T) {
		if err := sim.GoLive(st.UserID); err != nil {
			t.Fatal(err)
		}
		_, f := c.readEvent(EventStreamerIsLive, time.Second)
		live, _ := sim.Streamer(st.UserID)
		want := map[string]any{"livestream": map[string]any{
			"id": float64(live.LivestreamID), "channel_id": float64(st.ChannelID), "session_title": live.Title,
			"source": nil, "created_at": live.PusherCreatedAt.Format("2006-01-02T15:04:05.000000Z"),
		}}
		if diff := cmp.Diff(want, f.Data); diff != "" || f.Channel != ch || !f.DataIsString {
			t.Errorf("StreamerIsLive on %q (data string %v) -want +got:\n%s", f.Channel, f.DataIsString, diff)
		}
		if lag := live.PusherCreatedAt.Sub(live.StartedAt); lag < time.Second || lag > 3*time.Second {
			t.Errorf("created_at - start_time = %v, want 1..3s", lag)
		}
		if err := sim.SetViewers(st.UserID, 949); err != nil {
			t.Fatal(err)
		}
		_, f = c.readEvent(EventLivestreamUpdated, time.Second)
		if got := f.Data.(map[string]any)["livestream"].(map[string]any)["viewer_count"]; got != float64(949) {
			t.Errorf("viewer_count %v", got)
		}
		if err := sim.EmitNoise(st.UserID); err != nil {
			t.Fatal(err)
		}
		b, _ := c.readRaw(time.Second)
		if f := decodeFrame(t, b); f.Event != EventFollowersUpdated && f.Event != EventChannelSubscription {
			t.Errorf("noise event %q", f.Event)
		}
		if err := sim.GoOffline(st.UserID); err != nil {
			t.Fatal(err)
		}
		_, f = c.readEvent(EventStopStreamBroadcast, time.Second)
		want = map[string]any{"livestream": map[string]any{"id": float64(live.LivestreamID), "channel": map[string]any{"id": float64(st.ChannelID), "is_banned": false}}}
		if diff := cmp.Diff(want, f.Data); diff != "" {
			t.Errorf("StopStreamBroadcast -want +got:\n%s", diff)
		}
	})
	t.Run("unsubscribe stops events", func(t *testing.T) {
		c.send(`{"event":"pusher:unsubscribe","data":{"channel":"` + ch + `"}}`)
		eventually(t, time.Second, "unsubscribed", func() bool { return sim.Subscriptions(ch) == 0 })
		if err := sim.GoLive(st.UserID); err != nil {
			t.Fatal(err)
		}
		c.send(`{"event":"pusher:ping","data":{}}`)
		if f := c.read(time.Second); f.Event != "pusher:pong" {
			t.Errorf("got %q before the pong: events still delivered after unsubscribe", f.Event)
		}
	})
	t.Run("private channel is refused", func(t *testing.T) {
		c.send(`{"event":"pusher:subscribe","data":{"auth":"","channel":"private-livestream.1"}}`)
		_, f := c.readEvent("pusher:error", time.Second)
		if f.DataIsString {
			t.Error("pusher:error data should be an object")
		}
	})
	t.Run("refused channel", func(t *testing.T) {
		other := channelName(sim.Streamers()[1])
		sub := `{"event":"pusher:subscribe","data":{"auth":"","channel":"` + other + `"}}`
		tests := []struct {
			name    string
			r       Refusal
			event   string
			channel string
			data    map[string]any
		}{
			{"subscription_error", RefuseSubscriptionError, "pusher:subscription_error", other,
				map[string]any{"type": "AuthError", "error": "Subscription to " + other + " is not allowed", "status": float64(403)}},
			{"pusher:error", RefusePusherError, "pusher:error", "",
				map[string]any{"code": float64(4009), "message": "Subscription to " + other + " is not allowed"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sim.RefuseChannel(other, tt.r)
				c.send(sub)
				f := c.read(time.Second)
				if f.Event != tt.event || f.Channel != tt.channel || f.DataIsString {
					t.Errorf("refusal frame %v; want %s on %q with object data", f.Raw, tt.event, tt.channel)
				}
				if diff := cmp.Diff(tt.data, f.Data); diff != "" {
					t.Errorf("refusal data (-want +got):\n%s", diff)
				}
				if n := sim.Subscriptions(other); n != 0 {
					t.Errorf("%d subscriptions to a refused channel", n)
				}
			})
		}
		sim.RefuseChannel(other, Accept)
		c.subscribe(other)
	})
	t.Run("ban while live", func(t *testing.T) {
		c.subscribe(ch)
		if err := sim.Ban(st.UserID); err != nil {
			t.Fatal(err)
		}
		_, f := c.readEvent(EventStopStreamBroadcast, time.Second)
		if got := f.Data.(map[string]any)["livestream"].(map[string]any)["channel"].(map[string]any)["is_banned"]; got != true {
			t.Errorf("is_banned %v", got)
		}
		if err := sim.GoLive(st.UserID); !errors.Is(err, ErrBanned) {
			t.Errorf("GoLive on banned: %v", err)
		}
	})
}

func TestPusherHandshakeErrors(t *testing.T) {
	sim := startSim(t)
	base := strings.TrimSuffix(sim.PusherURL(), "?protocol=7&client=js&version=8.4.0&flash=false")
	base = strings.TrimSuffix(base, DefaultAppKey)
	for _, tc := range []struct {
		name, url string
		code      int
	}{
		{"unknown app key", base + "eb1d5f283081a78b932c?protocol=7&client=js&version=8.4.0", CloseAppNotFound},
		{"no protocol", base + DefaultAppKey + "?client=js&version=8.4.0", CloseNoProtocol},
		{"old protocol", base + DefaultAppKey + "?protocol=6&client=js", CloseUnsupportedProto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPusher(t, tc.url)
			f := c.read(time.Second)
			if f.Event != "pusher:error" || f.Data.(map[string]any)["code"] != float64(tc.code) {
				t.Errorf("first frame %v", f.Raw)
			}
			if got := c.closeCode(time.Second); got != tc.code {
				t.Errorf("close code %d, want %d", got, tc.code)
			}
		})
	}
	eventually(t, time.Second, "no sockets", func() bool { return sim.Sockets() == 0 })
}

func TestPusherActivity(t *testing.T) {
	sim := startSim(t, WithActivityTimeout(80*time.Millisecond), WithPongTimeout(250*time.Millisecond))
	t.Run("advertised timeout is whole seconds", func(t *testing.T) {
		_, est := connect(t, sim)
		if got := est.Data.(map[string]any)["activity_timeout"]; got != float64(1) {
			t.Errorf("activity_timeout %v, want 1", got)
		}
	})
	t.Run("server pings an idle client that answers", func(t *testing.T) {
		c, _ := connect(t, sim)
		for i := 0; i < 3; i++ {
			b, _ := c.readEvent("pusher:ping", time.Second)
			if string(b) != `{"event":"pusher:ping","data":"{}"}` {
				t.Fatalf("ping frame %s", b)
			}
			c.send(`{"event":"pusher:pong","data":{}}`)
		}
		c.send(`{"event":"pusher:ping","data":{}}`)
		c.readEvent("pusher:pong", time.Second) // still open
	})
	t.Run("4201 when the ping is not answered", func(t *testing.T) {
		c, _ := connect(t, sim)
		c.readEvent("pusher:ping", time.Second)
		if got := c.closeCode(2 * time.Second); got != ClosePongNotReceived {
			t.Errorf("close code %d, want 4201", got)
		}
	})
}

func TestPusherIdleClose(t *testing.T) {
	sim := startSim(t, WithIdleClose(100*time.Millisecond))
	c, _ := connect(t, sim)
	if got := c.closeCode(2 * time.Second); got != CloseInactivity {
		t.Errorf("close code %d, want 4202", got)
	}
	// A socket with a subscription stays.
	c, _ = connect(t, sim)
	c.subscribe("channel.1")
	if _, err := c.readRaw(300 * time.Millisecond); err == nil || !isTimeout(err) {
		t.Errorf("subscribed socket: %v", err)
	}
}

func isTimeout(err error) bool { return errors.Is(err, errReadTimeout) }

func TestPusherServerCloses(t *testing.T) {
	sim := startSim(t, WithStreamers(3))
	for _, tc := range []struct {
		name string
		act  func()
		code int
	}{
		{"4000 family: app gone", func() { sim.CloseSockets(4001, "App key gone") }, 4001},
		{"4100 family: over capacity", func() { sim.CloseSockets(4100, "Over capacity") }, 4100},
		{"4200 family: reconnect", func() { sim.CloseSockets(4200, "Please reconnect") }, 4200},
		{"abrupt drop", sim.DropSockets, websocket.CloseAbnormalClosure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, _ := connect(t, sim)
			c2, _ := connect(t, sim)
			c1.subscribe("channel.1")
			eventually(t, time.Second, "two sockets", func() bool { return sim.Sockets() == 2 })
			tc.act()
			for _, c := range []*wsClient{c1, c2} {
				if got := c.closeCode(time.Second); got != tc.code {
					t.Errorf("close code %d, want %d", got, tc.code)
				}
			}
			eventually(t, time.Second, "no sockets", func() bool { return sim.Sockets() == 0 && sim.Subscriptions("channel.1") == 0 })
		})
	}
}

func TestPusherStall(t *testing.T) {
	sim := startSim(t, WithStreamers(2), WithActivityTimeout(50*time.Millisecond), WithPongTimeout(100*time.Millisecond))
	st := sim.Streamers()[0]
	c, _ := connect(t, sim)
	c.subscribe(channelName(st))
	c.send(`{"event":"pusher:pong","data":{}}`)
	sim.StallSockets(true)
	c.send(`{"event":"pusher:ping","data":{}}`)
	if err := sim.GoLive(st.UserID); err != nil {
		t.Fatal(err)
	}
	// Stalled: no pong, no event, no server ping, and no 4201 either.
	if b, err := c.readRaw(400 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("stalled socket sent %s (err %v)", b, err)
	}
	sim.StallSockets(false)
	c.send(`{"event":"pusher:ping","data":{}}`)
	c.readEvent("pusher:pong", time.Second)
	// A new socket is not stalled.
	sim.StallSockets(true)
	c2, _ := connect(t, sim)
	c2.send(`{"event":"pusher:ping","data":{}}`)
	c2.readEvent("pusher:pong", time.Second)
}

func TestPusherHandshakeFault(t *testing.T) {
	sim := startSim(t)
	sim.FailNext(EndpointPusher, 1, Fault503)
	_, resp, err := websocket.DefaultDialer.Dial(sim.PusherURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial during fault: err %v resp %v", err, resp)
	}
	_ = resp.Body.Close()
	connect(t, sim)
	if got := sim.Requests(EndpointPusher); got != 2 {
		t.Errorf("pusher handshakes %d, want 2", got)
	}
}
