// Package pusher is a client of Kick's unofficial realtime feed, a Pusher
// protocol-7 WebSocket (kick-api.md §2, §3). It subscribes to
// "channel.{channel_id}" for every watched streamer whose channel id is
// known, sharded over several sockets, and turns StreamerIsLive,
// StopStreamBroadcast and LivestreamUpdated into observations.
//
// Every socket keeps itself alive by the protocol's rules: it pings after
// activity_timeout of silence and reconnects when no pong comes; it answers
// the server's pings; it follows the close-code families (4000–4099 stop,
// 4100–4199 back off at least a second, 4200–4299 reconnect at once (at
// most three times in ten seconds, then back off),
// anything else back off) with exponential backoff and full jitter; after a
// reconnect it resubscribes every channel and asks the Checker to reconcile
// every streamer on it, since Kick only sends transitions. While a socket is
// down its streamers are reported blind through Coverage observations, and
// so are channels the server refuses and the channels of a stopped socket,
// each with its reason; only confirmed subscriptions count as covered.
package pusher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/realtime"
)

// DefaultURL is Kick's Pusher endpoint (kick-api.md §2.1).
const DefaultURL = "wss://ws-us2.pusher.com/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false"

// DefaultChannelsPerSocket is how many Kick channels share one socket,
// chosen with BenchmarkSubscribeFanIn against kicksim (loopback, 2 shared
// cores, 20k channels, go-live burst on every channel): 250 per socket gave
// 61k events/s, 300 ms to resubscribe after every socket dropped; 500 gave
// 78k events/s, 225 ms, 40 sockets; 1000 gave 20k events/s; 5000 lost about
// 4.9k events per burst because one socket overflowed the server's
// 4096-frame send queue (closed with 4100). 500 keeps a burst of one event
// per channel at an eighth of that queue, the number of sockets to Kick
// small (its connection quota is unknown, 4004), and a reconnect's
// resubscription and reconcile request to 500 streamers.
const DefaultChannelsPerSocket = 500

// Defaults of the keepalive and backoff options.
const (
	DefaultActivityTimeout = 120 * time.Second
	DefaultPongTimeout     = 30 * time.Second
	DefaultBackoffBase     = time.Second
	DefaultBackoffMax      = 2 * time.Minute
	DefaultMaxFrameBytes   = 256 << 10
	// minBackoff4100 is the protocol's floor for 4100–4199 (kick-api.md §3).
	minBackoff4100 = time.Second
	// stableAfter is how long a session must last before the backoff
	// attempt counter starts over.
	stableAfter = 30 * time.Second
	writeWait   = 10 * time.Second
)

// BlindReason is the Reason of the Coverage observations of a socket that
// is down.
const BlindReason = "pusher socket down"

// RefusedReason starts the Reason of the Coverage observations of channels
// whose subscription the server refused; the server's message follows
// (e.g. "subscription refused: Subscription to channel.668 is not allowed").
const RefusedReason = "subscription refused"

// StoppedReason starts the Reason of the Coverage observations of the
// channels of a socket stopped by a 4000–4099 close code; the code follows
// ("pusher socket stopped by close code 4001").
const StoppedReason = "pusher socket stopped"

// Options configures a Client.
type Options struct {
	// URL is the Pusher WebSocket URL with its query string (DefaultURL
	// when empty).
	URL string
	// ChannelsPerSocket caps the channels of one socket
	// (DefaultChannelsPerSocket when 0).
	ChannelsPerSocket int
	// Out receives every observation. Required.
	Out chan<- observation.Observation
	// Checker is asked to reconcile the streamers of a socket after it
	// reconnects. Optional.
	Checker observation.Checker
	// Logger (discard when nil).
	Logger *slog.Logger
	// ActivityTimeout is the client's own activity timeout; the effective
	// one is the smaller of this and the server's (DefaultActivityTimeout
	// when 0).
	ActivityTimeout time.Duration
	// PongTimeout is how long to wait for any frame after a ping, and for
	// connection_established after the handshake (DefaultPongTimeout when 0).
	PongTimeout time.Duration
	// BackoffBase and BackoffMax bound the exponential backoff
	// (DefaultBackoffBase, DefaultBackoffMax when 0).
	BackoffBase, BackoffMax time.Duration
	// MaxFrameBytes is the read limit per frame (DefaultMaxFrameBytes when 0).
	MaxFrameBytes int64
	// Header is sent with every handshake (e.g. User-Agent). Optional.
	Header http.Header
	// Dialer dials the sockets (a copy of websocket.DefaultDialer when nil).
	Dialer *websocket.Dialer
	// Counters count what the client receives (new ones when nil); the
	// realtime Manager keeps them across restarts.
	Counters *realtime.Counters
	// Reconcile: the client replaces another provider, so the first
	// connection of every socket reconciles like a reconnect.
	Reconcile bool
	// Note is prefixed to the reasons of blind coverage reports (why this
	// is a fallback). Optional.
	Note string
	// EndOnStop makes Run end with a *realtime.RefusedError when a socket
	// is stopped by a 4000–4099 close code (the realtime Manager then
	// renegotiates); otherwise Run carries on with the stopped socket
	// parked.
	EndOnStop bool
}

// State is the state of one socket.
type State = realtime.State

// Socket states.
const (
	StateConnecting = realtime.StateConnecting
	StateConnected  = realtime.StateConnected
	StateBackoff    = realtime.StateBackoff
	StateStopped    = realtime.StateStopped
)

// SocketStatus describes one socket for the status API.
type SocketStatus = realtime.SocketStatus

// Stats counts what the client received.
type Stats = realtime.Stats

// down clears what describes a connection.
func down(st *SocketStatus) {
	st.SocketID, st.ConnectedSince, st.Channels, st.Refused = "", time.Time{}, 0, 0
}

// Client shards Kick channels over Pusher sockets. It is safe for
// concurrent use.
type Client struct {
	o      Options
	log    *slog.Logger
	dialer *websocket.Dialer

	mu       sync.Mutex
	users    map[int64]int64   // channel id → user id
	where    map[int64]*socket // channel id → its socket
	sockets  []*socket         // in id order
	nextID   int
	ctx      context.Context // Run's context, nil before Run
	stopping bool
	wg       sync.WaitGroup
	cnt      *realtime.Counters
	stopped  chan *realtime.RefusedError // the first socket stopped by a 4000–4099 code
}

// New validates o and returns a client; nothing connects before Run.
func New(o Options) (*Client, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("pusher: parse URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("pusher: URL scheme must be ws or wss, got %q", u.Scheme)
	}
	if o.Out == nil {
		return nil, errors.New("pusher: Options.Out is required")
	}
	if o.ChannelsPerSocket < 0 || o.ActivityTimeout < 0 || o.PongTimeout < 0 || o.BackoffBase < 0 || o.BackoffMax < 0 || o.MaxFrameBytes < 0 {
		return nil, errors.New("pusher: options must not be negative")
	}
	orDefault(&o.ChannelsPerSocket, DefaultChannelsPerSocket)
	orDefault(&o.ActivityTimeout, DefaultActivityTimeout)
	orDefault(&o.PongTimeout, DefaultPongTimeout)
	orDefault(&o.BackoffBase, DefaultBackoffBase)
	orDefault(&o.BackoffMax, DefaultBackoffMax)
	orDefault(&o.MaxFrameBytes, DefaultMaxFrameBytes)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := o.Dialer
	if d == nil {
		dd := *websocket.DefaultDialer
		dd.HandshakeTimeout = 15 * time.Second
		d = &dd
	}
	cnt := o.Counters
	if cnt == nil {
		cnt = new(realtime.Counters)
	}
	return &Client{
		o:       o,
		log:     log.With(logkeys.Component, "pusher"),
		dialer:  d,
		users:   make(map[int64]int64),
		where:   make(map[int64]*socket),
		cnt:     cnt,
		stopped: make(chan *realtime.RefusedError, 1),
	}, nil
}

// orDefault sets *v to d when it is zero.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Name is the provider's name.
func (c *Client) Name() string { return realtime.Pusher }

// Run connects the sockets and keeps them up until ctx is cancelled (it
// returns nil). With Options.EndOnStop it also ends when a socket is
// stopped by a 4000–4099 close code: those are about the app key and the
// URL, not one connection, so it ends every socket and returns a
// *realtime.RefusedError for the realtime Manager to renegotiate. The
// stopped socket's channels are reported blind (StoppedReason) either way.
func (c *Client) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	if c.ctx != nil {
		c.mu.Unlock()
		return errors.New("pusher: Run called twice")
	}
	c.ctx = ctx
	for _, s := range c.sockets {
		c.start(s)
	}
	c.mu.Unlock()
	var refused error
	select {
	case <-ctx.Done():
	case re := <-c.stopped:
		refused = re
		cancel()
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.wg.Wait()
	return refused
}

// refuse reports a socket stopped by close code; with EndOnStop the first
// one ends Run.
func (c *Client) refuse(code int, reason string) {
	if !c.o.EndOnStop {
		return
	}
	select {
	case c.stopped <- &realtime.RefusedError{Provider: realtime.Pusher, Code: code, Reason: reason}:
	default:
	}
}

// start runs s's goroutine; c.mu is held.
func (c *Client) start(s *socket) {
	if c.ctx == nil || c.stopping {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s.run(c.ctx)
	}()
}

// Subscribe watches Kick channel channelID for streamer userID, at any
// time, without reconnecting any socket. Subscribing a known channel again
// only updates its user id.
//
// A channel goes to the first socket with room that has not been stopped
// by a 4000–4099 close code, or else to a new socket. Those codes are about
// the app and its URL, not one connection (app gone or disabled, over the
// connection quota, unauthorized, bad protocol), so a new socket would be
// stopped too: once a socket has stopped, no new one is opened, and a
// channel with no room elsewhere is parked on the stopped socket, which
// reports it blind with its stop reason (StoppedReason). Changing the URL
// needs a restart.
func (c *Client) Subscribe(channelID, userID int64) {
	if channelID <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.where[channelID]; ok {
		c.users[channelID] = userID
		return
	}
	var s, stopped *socket
	for _, x := range c.sockets {
		if x.status.State == StateStopped {
			stopped = cmp.Or(stopped, x)
			continue
		}
		if len(x.want) < c.o.ChannelsPerSocket {
			s = x
			break
		}
	}
	s = cmp.Or(s, stopped)
	if s == nil {
		c.nextID++
		s = newSocket(c, c.nextID)
		c.sockets = append(c.sockets, s)
		c.start(s)
	}
	c.users[channelID] = userID
	c.where[channelID] = s
	s.want[channelID] = struct{}{}
	if s.status.State == StateStopped {
		s.parked[channelID] = struct{}{}
	}
	s.poke()
}

// Unsubscribe stops watching channelID, without reconnecting. A socket left
// without channels is closed, unless it was stopped: that one stays, in
// Status and as the place of the channels that find no room elsewhere.
func (c *Client) Unsubscribe(channelID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.where[channelID]
	if !ok {
		return
	}
	delete(c.where, channelID)
	delete(c.users, channelID)
	delete(s.want, channelID)
	if len(s.want) == 0 && s.status.State != StateStopped {
		s.retired = true
		c.sockets = slices.DeleteFunc(c.sockets, func(x *socket) bool { return x == s })
	}
	s.poke()
}

// Sockets describes every socket, in id order (the realtime.Provider
// method; Status is the same).
func (c *Client) Sockets() []SocketStatus { return c.Status() }

// Status describes every socket, in id order.
func (c *Client) Status() []SocketStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SocketStatus, 0, len(c.sockets))
	for _, s := range c.sockets {
		st := s.status
		st.ID = s.id
		st.Wanted = len(s.want)
		out = append(out, st)
	}
	return out
}

// Stats returns the receive counters.
func (c *Client) Stats() Stats { return c.cnt.Stats() }

// userOf returns the user id of a subscribed channel.
func (c *Client) userOf(channelID int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid, ok := c.users[channelID]
	return uid, ok
}

// emit sends o to Out unless ctx ends first.
func (c *Client) emit(ctx context.Context, o observation.Observation) {
	select {
	case c.o.Out <- o:
	case <-ctx.Done():
	}
}
