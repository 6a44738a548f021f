// Package centrifugo is the Centrifugo provider of kickmon's realtime
// source: the feed kick.com's own pages use since autumn 2026
// (kick-api.md §2.7). It speaks Centrifugo's JSON protocol through
// github.com/centrifugal/centrifuge-go, the protocol's official Go client,
// which connects with the client name "js", answers the server's {} pings,
// reads several messages per frame, renews the connection token (from
// Options.Token) before its ttl ends, and honours the close-code classes:
// terminal codes (3500–3999, 4500–4999) end the connection for good, the
// others reconnect with backoff.
//
// Channels ("channel.{channel_id}") are placed over several connections
// (Options.ChannelsPerSocket each), as Pusher's are. After a reconnect,
// once every channel is subscribed again, the Checker reconciles the
// streamers of that connection, since Kick only sends transitions. While a
// connection is down its streamers are reported blind, as are channels the
// server refuses. A terminal disconnect or a refused token ends Run with a
// *realtime.RefusedError, for the realtime Manager to renegotiate.
package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	centrifuge "github.com/centrifugal/centrifuge-go"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/realtime"
)

// Defaults of the options.
const (
	// DefaultChannelsPerSocket: as many channels per connection as Pusher
	// carries per socket (pusher.DefaultChannelsPerSocket explains 500).
	DefaultChannelsPerSocket = 500
	DefaultMinReconnect      = 500 * time.Millisecond
	DefaultMaxReconnect      = 2 * time.Minute
	// clientName is what kick.com's web client calls itself.
	clientName = "js"
	// tokenTimeout bounds one token request.
	tokenTimeout = 15 * time.Second
)

// Options configure a Client.
type Options struct {
	// URL is the WebSocket URL (…/connection/websocket). Required.
	URL string
	// Token fetches a connection token, at connect and before it expires.
	// An error wrapping realtime.ErrTokenRefused ends the client. Required.
	Token func(ctx context.Context) (string, error)
	// Origin is sent with the handshake ("" sends none).
	Origin string
	// Header is sent with the handshake (e.g. User-Agent). Optional.
	Header http.Header
	// ChannelsPerSocket caps the channels of one connection.
	ChannelsPerSocket int
	// Out receives every observation. Required.
	Out chan<- observation.Observation
	// Checker reconciles the streamers of a connection after a reconnect.
	Checker observation.Checker
	Logger  *slog.Logger
	// Counters count what the client receives (new ones when nil).
	Counters *realtime.Counters
	// Reconcile: the client replaces another provider, so every first
	// connection reconciles and reports its streamers seeing.
	Reconcile bool
	// Note is prefixed to blind coverage reasons (why this is a fallback).
	Note string
	// MinReconnect and MaxReconnect bound centrifuge-go's reconnect backoff.
	MinReconnect, MaxReconnect time.Duration
	// PingDelay is how long past the server's ping interval a missing ping
	// closes the connection (centrifuge-go's default when 0).
	PingDelay time.Duration
}

// Client shards Kick channels over Centrifugo connections. It implements
// realtime.Provider and is safe for concurrent use.
type Client struct {
	o   Options
	log *slog.Logger
	cnt *realtime.Counters

	mu      sync.Mutex
	users   map[int64]int64
	where   map[int64]*socket
	sockets []*socket
	nextID  int
	running bool
	ctx     context.Context

	refused chan *realtime.RefusedError
	lastTok string // the last token error, for a refusal's reason
}

// New validates o; nothing connects before Run.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("centrifugo: URL %q is not an absolute URL", o.URL)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("centrifugo: URL scheme must be ws or wss, got %q", u.Scheme)
	}
	if o.Out == nil || o.Token == nil {
		return nil, errors.New("centrifugo: Options.Out and Options.Token are required")
	}
	if o.ChannelsPerSocket <= 0 {
		o.ChannelsPerSocket = DefaultChannelsPerSocket
	}
	if o.MinReconnect <= 0 {
		o.MinReconnect = DefaultMinReconnect
	}
	if o.MaxReconnect <= 0 {
		o.MaxReconnect = DefaultMaxReconnect
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cnt := o.Counters
	if cnt == nil {
		cnt = new(realtime.Counters)
	}
	return &Client{o: o, log: log.With(logkeys.Component, "centrifugo"), cnt: cnt,
		users: make(map[int64]int64), where: make(map[int64]*socket), refused: make(chan *realtime.RefusedError, 1)}, nil
}

// Name is the provider's name.
func (c *Client) Name() string { return realtime.Centrifugo }

// Stats returns the receive counters.
func (c *Client) Stats() realtime.Stats { return c.cnt.Stats() }

// Run connects every socket and keeps them up until ctx ends (nil) or the
// server refuses kickmon for good (*realtime.RefusedError).
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running || c.ctx != nil {
		c.mu.Unlock()
		return errors.New("centrifugo: Run called twice")
	}
	c.running, c.ctx = true, ctx
	socks := slices.Clone(c.sockets)
	c.mu.Unlock()
	// centrifuge-go runs some callbacks synchronously, and they take c.mu:
	// never call into a client while holding it.
	for _, s := range socks {
		s.connect()
	}
	var err error
	select {
	case <-ctx.Done():
	case re := <-c.refused:
		err = re
	}
	c.mu.Lock()
	c.running = false
	socks = slices.Clone(c.sockets)
	c.mu.Unlock()
	for _, s := range socks {
		s.cl.Close()
	}
	return err
}

// Subscribe watches Kick channel channelID for streamer userID. A channel
// goes to the first socket with room, else to a new one.
func (c *Client) Subscribe(channelID, userID int64) {
	if channelID <= 0 {
		return
	}
	c.mu.Lock()
	if _, ok := c.where[channelID]; ok {
		c.users[channelID] = userID
		c.mu.Unlock()
		return
	}
	var s *socket
	for _, x := range c.sockets {
		if len(x.subs) < c.o.ChannelsPerSocket {
			s = x
			break
		}
	}
	fresh := s == nil
	if fresh {
		c.nextID++
		s = c.newSocket(c.nextID)
		c.sockets = append(c.sockets, s)
	}
	c.users[channelID] = userID
	c.where[channelID] = s
	sub := s.add(channelID)
	connect := fresh && c.running
	c.mu.Unlock()
	if sub != nil {
		if err := sub.Subscribe(); err != nil {
			c.log.Warn("centrifugo subscribe", logkeys.ChannelID, channelID, logkeys.Err, err)
		}
	}
	if connect {
		s.connect()
	}
}

// Unsubscribe stops watching channelID; a socket left without channels is
// closed.
func (c *Client) Unsubscribe(channelID int64) {
	c.mu.Lock()
	s, ok := c.where[channelID]
	if !ok {
		c.mu.Unlock()
		return
	}
	delete(c.where, channelID)
	delete(c.users, channelID)
	sub := s.remove(channelID)
	empty := len(s.subs) == 0
	if empty {
		c.sockets = slices.DeleteFunc(c.sockets, func(x *socket) bool { return x == s })
		s.retired = true
	}
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
		_ = s.cl.RemoveSubscription(sub)
	}
	if empty {
		s.cl.Close()
	}
}

// Sockets describes every socket, in id order.
func (c *Client) Sockets() []realtime.SocketStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]realtime.SocketStatus, 0, len(c.sockets))
	for _, s := range c.sockets {
		st := s.status
		st.ID, st.Wanted = s.id, len(s.subs)
		st.Channels, st.Refused = 0, len(s.refusedWhy)
		if st.State == realtime.StateConnected {
			st.Channels = len(s.confirmed)
		}
		out = append(out, st)
	}
	return out
}

func (c *Client) userOf(channelID int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid, ok := c.users[channelID]
	return uid, ok
}

// token is centrifuge-go's GetToken: a refused token becomes
// ErrUnauthorized, which ends the connection for good.
func (c *Client) token(centrifuge.ConnectionTokenEvent) (string, error) {
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	tok, err := c.o.Token(ctx)
	if err != nil {
		c.mu.Lock()
		c.lastTok = err.Error()
		c.mu.Unlock()
		c.log.Warn("centrifugo token", logkeys.Err, err)
		if errors.Is(err, realtime.ErrTokenRefused) {
			return "", centrifuge.ErrUnauthorized
		}
		return "", err
	}
	return tok, nil
}

// refuse ends Run with the first refusal.
func (c *Client) refuse(code int, reason string) {
	select {
	case c.refused <- &realtime.RefusedError{Provider: realtime.Centrifugo, Code: code, Reason: reason}:
	default:
	}
}

// emit sends o to Out unless Run's context ends first.
func (c *Client) emit(o observation.Observation) {
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case c.o.Out <- o:
	case <-ctx.Done():
	}
}

// coverage reports users blind (with reason) or seeing again.
func (c *Client) coverage(users []int64, blind bool, reason string) {
	if len(users) == 0 {
		return
	}
	if blind && c.o.Note != "" {
		reason = c.o.Note + "; " + reason
	}
	c.emit(observation.Observation{Kind: observation.Coverage, Source: realtime.SourceOf(realtime.Centrifugo), UserIDs: users, Blind: blind, Reason: reason, ObservedAt: time.Now()})
}
