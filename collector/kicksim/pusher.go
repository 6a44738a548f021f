package kicksim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Pusher event names (kick-api.md §2.3, §2.4, §3).
const (
	EventStreamerIsLive      = `App\Events\StreamerIsLive`
	EventStopStreamBroadcast = `App\Events\StopStreamBroadcast`
	EventLivestreamUpdated   = `App\Events\LivestreamUpdated`
	EventFollowersUpdated    = `App\Events\FollowersUpdated`
	EventChannelSubscription = `App\Events\ChannelSubscriptionEvent`
)

// Pusher close codes the sim uses (kick-api.md §3).
const (
	CloseAppNotFound      = 4001
	CloseUnsupportedProto = 4007
	CloseNoProtocol       = 4008
	CloseOverCapacity     = 4100
	CloseGeneric          = 4200
	ClosePongNotReceived  = 4201
	CloseInactivity       = 4202
)

const writeWait = 5 * time.Second

// frame is a server→client Pusher message; data is a JSON-encoded string.
type frame struct {
	Event   string `json:"event"`
	Data    string `json:"data"`
	Channel string `json:"channel,omitempty"`
}

func encodeFrame(event, channel string, data any) []byte {
	return marshal(frame{Event: event, Data: string(marshal(data)), Channel: channel})
}

var (
	framePong = marshal(frame{Event: "pusher:pong", Data: "{}"})
	framePing = marshal(frame{Event: "pusher:ping", Data: "{}"})
)

// errorFrame is pusher:error; its data is an object, not a string (Pusher
// protocol docs, kick-api.md §3).
func errorFrame(code int, msg string) []byte {
	var c any
	if code != 0 {
		c = code
	}
	return marshal(struct {
		Event string `json:"event"`
		Data  any    `json:"data"`
	}{"pusher:error", map[string]any{"code": c, "message": msg}})
}

// hub holds the sockets and their subscriptions.
type hub struct {
	s        *Sim
	upgrader websocket.Upgrader
	mu       sync.RWMutex
	conns    map[*pconn]struct{}
	subs     map[string]map[*pconn]struct{}
	refused  map[string]Refusal // channels whose subscriptions are refused
	closed   bool
	rng      *rand.Rand // socket ids; guarded by mu
	pings    atomic.Int64
	frames   atomic.Int64 // channel event frames queued to sockets
}

func newHub(s *Sim) *hub {
	return &hub{
		s: s,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			CheckOrigin:     func(*http.Request) bool { return true },
		},
		conns:   make(map[*pconn]struct{}),
		subs:    make(map[string]map[*pconn]struct{}),
		refused: make(map[string]Refusal),
		rng:     rand.New(rand.NewPCG(uint64(s.o.seed), 0x707573686572)),
	}
}

// pconn is one Pusher socket.
type pconn struct {
	h        *hub
	ws       *websocket.Conn
	id       string
	out      chan []byte
	overflow chan struct{} // signalled when out is full
	done     chan struct{}
	once     sync.Once
	lastRecv atomic.Int64 // unix nanos of the last client message
	pingSent atomic.Int64 // unix nanos of our unanswered pusher:ping, 0 if none
	stalled  atomic.Bool
	idleFrom atomic.Int64        // unix nanos since when the socket has no subscription, 0 if it has some
	subs     map[string]struct{} // guarded by h.mu
}

// handlePusher serves the WebSocket at /app/{key}.
func (s *Sim) handlePusher(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, EndpointPusher) {
		return
	}
	ws, err := s.hub.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", logErr, err)
		return // the upgrader answered the request
	}
	key, proto := r.PathValue("key"), r.URL.Query().Get("protocol")
	code, msg := 0, ""
	switch {
	case s.rt.pusherRetired.Load():
		s.rt.pusherRetiredRefusals.Add(1)
		code, msg = CloseAppNotFound, "App key "+key+" not in this cluster. Did you forget to specify the cluster?"
	case key != s.o.appKey:
		code, msg = CloseAppNotFound, "App key "+key+" not in this cluster. Did you forget to specify the cluster?"
	case proto == "":
		code, msg = CloseNoProtocol, "No protocol version supplied"
	case proto != "7":
		code, msg = CloseUnsupportedProto, "Unsupported protocol version"
	}
	if code != 0 {
		s.log.Debug("pusher connection refused", logCode, code)
		_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
		_ = ws.WriteMessage(websocket.TextMessage, errorFrame(code, msg))
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(writeWait))
		_ = ws.Close()
		return
	}
	c := &pconn{h: s.hub, ws: ws, out: make(chan []byte, s.o.socketBuffer), overflow: make(chan struct{}, 1), done: make(chan struct{}), subs: make(map[string]struct{})}
	now := time.Now().UnixNano()
	c.lastRecv.Store(now)
	c.idleFrom.Store(now)
	if !s.hub.add(c) {
		_ = ws.Close()
		return
	}
	if s.rt.pusherRetired.Load() { // retired while this socket was being added
		s.rt.pusherRetiredRefusals.Add(1)
		// No writer runs yet: refuse it as above, then let its loops end.
		_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
		_ = ws.WriteMessage(websocket.TextMessage, errorFrame(CloseAppNotFound, s.appKeyGone()))
		c.closeWith(CloseAppNotFound, s.appKeyGone())
		go c.writeLoop()
		go c.readLoop()
		return
	}
	s.log.Debug("pusher connected", logSocket, c.id)
	act := int64(math.Ceil(s.o.activityTimeout.Seconds()))
	c.send(encodeFrame("pusher:connection_established", "", struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int64  `json:"activity_timeout"`
	}{c.id, max(1, act)}))
	go c.writeLoop()
	go c.readLoop()
}

// add registers c and accounts its two goroutines; false after Close.
func (h *hub) add(c *pconn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	c.id = strconv.Itoa(100000+h.rng.IntN(900000)) + "." + strconv.Itoa(1000000+h.rng.IntN(9000000))
	h.conns[c] = struct{}{}
	h.s.wg.Add(2)
	return true
}

func (h *hub) remove(c *pconn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	for ch := range c.subs {
		if m := h.subs[ch]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(h.subs, ch)
			}
		}
	}
	c.subs = nil
}

func (h *hub) subscribe(c *pconn, ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.subs == nil { // already closed
		return
	}
	m := h.subs[ch]
	if m == nil {
		m = make(map[*pconn]struct{})
		h.subs[ch] = m
	}
	m[c] = struct{}{}
	c.subs[ch] = struct{}{}
	c.idleFrom.Store(0)
}

func (h *hub) unsubscribe(c *pconn, ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.subs == nil {
		return
	}
	delete(c.subs, ch)
	if m := h.subs[ch]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.subs, ch)
		}
	}
	if len(c.subs) == 0 {
		c.idleFrom.Store(time.Now().UnixNano())
	}
}

func (h *hub) snapshot() []*pconn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*pconn, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c)
	}
	return out
}

func (h *hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	for _, c := range h.snapshot() {
		c.kill()
	}
}

// publish sends an event to every socket subscribed to ch. data, the
// event's JSON, is built only when someone listens.
func (h *hub) publish(ch, event string, data func() []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	m := h.subs[ch]
	if len(m) == 0 {
		return
	}
	msg := marshal(frame{Event: event, Data: string(data()), Channel: ch})
	for c := range m {
		c.send(msg)
	}
	h.frames.Add(int64(len(m)))
}

// send queues msg; a socket whose queue is full is too slow and is closed
// with 4100 (over capacity: the client backs off and reconnects).
func (c *pconn) send(msg []byte) {
	select {
	case c.out <- msg:
	default:
		select {
		case c.overflow <- struct{}{}:
		default:
		}
	}
}

// kill closes the socket without a close frame.
func (c *pconn) kill() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.Close()
		c.h.remove(c)
	})
}

// closeWith sends a close frame with code and closes the socket.
func (c *pconn) closeWith(code int, reason string) {
	select {
	case <-c.done:
		return
	default:
	}
	c.h.s.log.Debug("pusher socket closed by server", logSocket, c.id, logCode, code)
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
	c.kill()
}

func (c *pconn) touch() {
	c.lastRecv.Store(time.Now().UnixNano())
	c.pingSent.Store(0)
}

func (c *pconn) writeLoop() {
	defer c.h.s.wg.Done()
	o := &c.h.s.o
	period := min(o.activityTimeout, o.pongTimeout) / 4
	if o.idleClose > 0 {
		period = min(period, o.idleClose/4)
	}
	period = max(10*time.Millisecond, min(period, time.Second))
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case msg := <-c.out:
			if c.stalled.Load() {
				continue // a stalled link loses what is sent
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				c.kill()
				return
			}
		case <-c.overflow:
			c.closeWith(CloseOverCapacity, "Over capacity")
			return
		case now := <-tick.C:
			if !c.checkActivity(now) {
				return
			}
		}
	}
}

// checkActivity pings a silent client, closes it with 4201 when the ping
// goes unanswered and with 4202 when it stays without subscriptions. It
// reports whether the socket is still open.
func (c *pconn) checkActivity(now time.Time) bool {
	if c.stalled.Load() {
		return true
	}
	o := &c.h.s.o
	n := now.UnixNano()
	if ps := c.pingSent.Load(); ps != 0 {
		if time.Duration(n-ps) >= o.pongTimeout {
			c.closeWith(ClosePongNotReceived, "Pong reply not received")
			return false
		}
	} else if time.Duration(n-c.lastRecv.Load()) >= o.activityTimeout {
		c.pingSent.Store(n)
		c.h.pings.Add(1)
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.ws.WriteMessage(websocket.TextMessage, framePing); err != nil {
			c.kill()
			return false
		}
	}
	if idle := c.idleFrom.Load(); o.idleClose > 0 && idle != 0 && time.Duration(n-idle) >= o.idleClose {
		c.closeWith(CloseInactivity, "Closed after inactivity")
		return false
	}
	return true
}

// clientMsg is a client→server message; data may be an object or a string.
type clientMsg struct {
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	Channel string          `json:"channel"`
}

func (c *pconn) readLoop() {
	defer c.h.s.wg.Done()
	defer c.kill()
	c.ws.SetReadLimit(64 << 10)
	c.ws.SetPingHandler(func(data string) error {
		c.touch()
		if c.stalled.Load() {
			return nil
		}
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
	})
	c.ws.SetPongHandler(func(string) error { c.touch(); return nil })
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if c.stalled.Load() {
			continue // a stalled server hears nothing
		}
		c.touch()
		if mt != websocket.TextMessage {
			c.send(errorFrame(0, "Binary WebSocket frames are not supported"))
			continue
		}
		c.handle(data)
	}
}

func (c *pconn) handle(raw []byte) {
	var m clientMsg
	if err := json.Unmarshal(raw, &m); err != nil {
		c.send(errorFrame(0, "Invalid JSON"))
		return
	}
	switch {
	case m.Event == "pusher:ping":
		c.send(framePong)
	case m.Event == "pusher:pong":
	case m.Event == "pusher:subscribe" || m.Event == "pusher:unsubscribe":
		var d struct {
			Channel string `json:"channel"`
			Auth    string `json:"auth"`
		}
		if err := decodeData(m.Data, &d); err != nil || d.Channel == "" {
			c.send(errorFrame(0, "Invalid "+m.Event+" data: channel is required"))
			return
		}
		if m.Event == "pusher:unsubscribe" {
			c.h.unsubscribe(c, d.Channel)
			return
		}
		if strings.HasPrefix(d.Channel, "private-") || strings.HasPrefix(d.Channel, "presence-") {
			c.send(errorFrame(0, fmt.Sprintf("Auth value for subscription to %s is invalid: should be of format 'key:signature'", d.Channel)))
			return
		}
		if msg := c.h.refusal(d.Channel); msg != nil {
			c.send(msg)
			return
		}
		c.h.subscribe(c, d.Channel)
		c.h.s.log.Debug("pusher subscribed", logSocket, c.id, logChannel, d.Channel)
		c.send(encodeFrame("pusher_internal:subscription_succeeded", d.Channel, struct{}{}))
	case strings.HasPrefix(m.Event, "client-"):
		c.send(errorFrame(0, "To send client events, you must enable this feature in the Settings page of your dashboard."))
	}
}

// decodeData decodes Pusher data that is either an object or a JSON string
// holding one.
func decodeData(raw json.RawMessage, v any) error {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, v)
}

// Payloads of the channel events, in the field order of the real samples.

type isLiveData struct {
	Livestream struct {
		ID           int64  `json:"id"`
		ChannelID    int64  `json:"channel_id"`
		SessionTitle string `json:"session_title"`
		Source       *int   `json:"source"`
		CreatedAt    string `json:"created_at"`
	} `json:"livestream"`
}

type stopData struct {
	Livestream struct {
		ID      int64 `json:"id"`
		Channel struct {
			ID       int64 `json:"id"`
			IsBanned bool  `json:"is_banned"`
		} `json:"channel"`
	} `json:"livestream"`
}

type updatedCategory struct {
	ID         int64  `json:"id"`
	CategoryID int64  `json:"category_id"`
	Name       string `json:"name"`
	Slug       string `json:"slug"`
}

type updatedData struct {
	Livestream struct {
		ID            int64             `json:"id"`
		Slug          string            `json:"slug"`
		ChannelID     int64             `json:"channel_id"`
		CreatedAt     string            `json:"created_at"`
		SessionTitle  string            `json:"session_title"`
		IsLive        bool              `json:"is_live"`
		RiskLevelID   *int              `json:"risk_level_id"`
		StartTime     string            `json:"start_time"`
		Source        *int              `json:"source"`
		TwitchChannel *string           `json:"twitch_channel"`
		Duration      int               `json:"duration"`
		Language      string            `json:"language"`
		IsMature      bool              `json:"is_mature"`
		ViewerCount   int               `json:"viewer_count"`
		Category      updatedCategory   `json:"category"`
		Categories    []updatedCategory `json:"categories"`
	} `json:"livestream"`
}

type followersData struct {
	FollowersCount int64   `json:"followersCount"`
	ChannelID      int64   `json:"channel_id"`
	Username       *string `json:"username"`
	CreatedAt      int64   `json:"created_at"`
	Followed       bool    `json:"followed"`
}

type subscriptionData struct {
	UserIDs   []int64 `json:"user_ids"`
	Username  string  `json:"username"`
	ChannelID int64   `json:"channel_id"`
}

// Pusher date formats (kick-api.md §2.4).
const (
	pusherCreatedAtLayout = "2006-01-02T15:04:05.000000Z"
	pusherLegacyLayout    = "2006-01-02 15:04:05"
)

func livestreamSlug(s Streamer) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s.Title) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return fmt.Sprintf("%08x-%s", uint32(splitmix(uint64(s.LivestreamID))), strings.Trim(b.String(), "-"))
}

// channelEvent is the event a world change publishes on
// channel.{channel_id}, the same on Pusher and Centrifugo; ok is false
// when the change publishes nothing.
func channelEvent(c change) (ch, event string, data func() any, ok bool) {
	st := c.s
	ch = "channel." + strconv.FormatInt(st.ChannelID, 10)
	switch c.kind {
	case changeLive:
		return ch, EventStreamerIsLive, func() any {
			var d isLiveData
			d.Livestream.ID, d.Livestream.ChannelID, d.Livestream.SessionTitle = st.LivestreamID, st.ChannelID, st.Title
			d.Livestream.CreatedAt = st.PusherCreatedAt.UTC().Format(pusherCreatedAtLayout)
			return d
		}, true
	case changeOffline:
		return ch, EventStopStreamBroadcast, func() any {
			var d stopData
			d.Livestream.ID = st.LivestreamID
			d.Livestream.Channel.ID, d.Livestream.Channel.IsBanned = st.ChannelID, st.Banned
			return d
		}, true
	case changeUpdate, changeMetadata:
		if !st.Live {
			return "", "", nil, false
		}
		return ch, EventLivestreamUpdated, func() any {
			cat, _ := categoryByID(st.CategoryID)
			uc := updatedCategory{ID: cat.ID, CategoryID: cat.ParentID, Name: cat.Name, Slug: cat.Slug}
			var d updatedData
			l := &d.Livestream
			l.ID, l.Slug, l.ChannelID = st.LivestreamID, livestreamSlug(st), st.ChannelID
			l.CreatedAt = st.PusherCreatedAt.UTC().Format(pusherLegacyLayout)
			l.StartTime = st.StartedAt.UTC().Format(pusherLegacyLayout)
			l.SessionTitle, l.IsLive, l.Language, l.IsMature, l.ViewerCount = st.Title, true, languageName(st.Language), st.Mature, st.Viewers
			l.Category, l.Categories = uc, []updatedCategory{uc}
			return d
		}, true
	case changeNoise:
		if c.noise%2 == 1 {
			return ch, EventFollowersUpdated, func() any {
				return followersData{FollowersCount: 1000 + int64(c.noise%50000), ChannelID: st.ChannelID, CreatedAt: time.Now().Unix(), Followed: true}
			}, true
		}
		return ch, EventChannelSubscription, func() any {
			return subscriptionData{UserIDs: []int64{int64(20_000_000 + c.noise)}, Username: "viewer" + strconv.Itoa(c.noise), ChannelID: st.ChannelID}
		}, true
	}
	return "", "", nil, false
}

// Sockets is the number of open Pusher sockets.
func (s *Sim) Sockets() int {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return len(s.hub.conns)
}

// Subscriptions is the number of sockets subscribed to a Pusher channel
// (e.g. "channel.2500016").
func (s *Sim) Subscriptions(channel string) int {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return len(s.hub.subs[channel])
}

// PingsSent is how many pusher:ping messages the server has sent to idle
// clients.
func (s *Sim) PingsSent() int { return int(s.hub.pings.Load()) }

// DropSockets closes every socket without a close frame (the client sees an
// abnormal closure, 1006).
func (s *Sim) DropSockets() {
	s.log.Info("dropping all sockets")
	for _, c := range s.hub.snapshot() {
		c.kill()
	}
}

// StallSockets(true) makes every open socket silent: it answers no ping,
// sends no ping, delivers no event and ignores what it receives, like a
// half-open TCP link. Sockets opened later are not stalled.
// StallSockets(false) revives the open ones.
func (s *Sim) StallSockets(on bool) {
	s.log.Info("stall sockets", "on", on)
	for _, c := range s.hub.snapshot() {
		c.stalled.Store(on)
		if !on {
			c.touch()
		}
	}
}

// Refusal is how the server refuses a subscription (see RefuseChannel).
type Refusal int

// Refusals.
const (
	// Accept subscribes as usual.
	Accept Refusal = iota
	// RefuseSubscriptionError answers pusher:subscription_error on the
	// channel, data {"type","error","status"} (as soketi refuses a channel).
	RefuseSubscriptionError
	// RefusePusherError answers pusher:error, without a channel, whose
	// message names the channel (as Pusher refuses a bad auth).
	RefusePusherError
)

// RefuseChannel makes the server answer later subscriptions to a Pusher
// channel (e.g. "channel.2500016") as r says; Accept undoes it. Sockets
// already subscribed stay subscribed.
func (s *Sim) RefuseChannel(channel string, r Refusal) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if r == Accept {
		delete(s.hub.refused, channel)
		return
	}
	s.hub.refused[channel] = r
}

// isRefused reports whether subscriptions to ch are refused.
func (h *hub) isRefused(ch string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.refused[ch] != Accept
}

// refusal is the frame refusing a subscription to ch, nil when accepted.
func (h *hub) refusal(ch string) []byte {
	h.mu.RLock()
	r := h.refused[ch]
	h.mu.RUnlock()
	switch r {
	case RefuseSubscriptionError:
		return marshal(struct {
			Event   string `json:"event"`
			Channel string `json:"channel"`
			Data    any    `json:"data"`
		}{"pusher:subscription_error", ch, map[string]any{"type": "AuthError", "error": "Subscription to " + ch + " is not allowed", "status": 403}})
	case RefusePusherError:
		return errorFrame(4009, "Subscription to "+ch+" is not allowed")
	}
	return nil
}

// CloseSockets closes every socket with a close frame carrying code and
// reason (e.g. 4100 over capacity, 4200 reconnect, 4001 app gone).
func (s *Sim) CloseSockets(code int, reason string) {
	s.log.Info("closing all sockets", logCode, code)
	for _, c := range s.hub.snapshot() {
		c.closeWith(code, reason)
	}
}
