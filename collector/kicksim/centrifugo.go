package kicksim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
)

// The Centrifugo endpoint is github.com/centrifugal/centrifuge, the server
// library Centrifugo is made of, with its defaults (JSON protocol v2,
// server pings {} every 25 s, several messages per frame) except for what
// Kick's server shows (kick-api.md §2.7): connection tokens are the guest
// JWTs of the token endpoint, refreshed by the client before they expire,
// and the Origin rule.

// centrifugoPath is where Centrifugo serves its WebSocket.
const centrifugoPath = "/connection/websocket"

// cfServer is the Centrifugo node and its WebSocket handler.
type cfServer struct {
	s       *Sim
	node    *centrifuge.Node
	handler http.Handler

	mu      sync.Mutex
	clients map[*centrifuge.Client]chan struct{} // closed when the client's disconnect handler has run
	conns   map[*cfConn]struct{}                 // hijacked connections not closed yet
	closed  bool
	lastSub atomic.Int64 // unix nanos of the last unsubscribe or disconnect
}

// brokerUnsubscribeDelay is how long after a channel's last subscriber
// leaves the library unsubscribes it from its broker, in a goroutine of
// its own (Node.unsubscribeFromBrokerWhenEmpty); shutdown waits for it.
const brokerUnsubscribeDelay = time.Second

// cfConn is a hijacked Centrifugo connection. The node only knows
// connections that have connected; Close cuts the others (a handshake
// without a connect command, a connect refused with error 109) with these.
type cfConn struct {
	net.Conn
	cf   *cfServer
	once sync.Once
}

func (c *cfConn) Close() error {
	c.once.Do(func() {
		c.cf.mu.Lock()
		delete(c.cf.conns, c)
		c.cf.mu.Unlock()
	})
	return c.Conn.Close()
}

// hijackTracker hands the library tracked connections.
type hijackTracker struct {
	http.ResponseWriter
	cf *cfServer
}

func (w hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("kicksim: response does not implement http.Hijacker")
	}
	conn, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := &cfConn{Conn: conn, cf: w.cf}
	w.cf.mu.Lock()
	defer w.cf.mu.Unlock()
	if w.cf.closed {
		_ = conn.Close()
		return nil, nil, errors.New("kicksim: closed")
	}
	w.cf.conns[c] = struct{}{}
	return c, brw, nil
}

func newCFServer(s *Sim) (*cfServer, error) {
	// The library builds log entries only for its level: debug only when
	// the sim logs debug.
	level := centrifuge.LogLevelWarn
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		level = centrifuge.LogLevelDebug
	}
	node, err := centrifuge.New(centrifuge.Config{
		Name:       "kicksim",
		LogLevel:   level,
		LogHandler: func(e centrifuge.LogEntry) { logCentrifuge(s.log, e) },
	})
	if err != nil {
		return nil, fmt.Errorf("kicksim: centrifuge node: %w", err)
	}
	cf := &cfServer{s: s, node: node, clients: make(map[*centrifuge.Client]chan struct{}), conns: make(map[*cfConn]struct{})}
	node.OnConnecting(cf.connecting)
	node.OnConnect(cf.connected)
	if err := node.Run(); err != nil {
		return nil, fmt.Errorf("kicksim: run centrifuge node: %w", err)
	}
	cf.handler = centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		CheckOrigin:    s.rt.originAllowed,
		PingPongConfig: centrifuge.PingPongConfig{PingInterval: s.o.cfPing, PongTimeout: s.o.cfPong},
	})
	return cf, nil
}

func logCentrifuge(l *slog.Logger, e centrifuge.LogEntry) {
	attrs := make([]any, 0, 2*len(e.Fields)+4)
	attrs = append(attrs, logEndpoint, "centrifugo")
	for k, v := range e.Fields {
		attrs = append(attrs, k, v)
	}
	if e.Error != nil {
		attrs = append(attrs, logErr, e.Error)
	}
	// The library's info is the sim's debug: the sim logs its own events.
	level := slog.LevelDebug
	switch {
	case e.Level >= centrifuge.LogLevelError:
		level = slog.LevelError
	case e.Level == centrifuge.LogLevelWarn:
		level = slog.LevelWarn
	}
	l.Log(context.Background(), level, e.Message, attrs...)
}

func (s *Sim) handleCentrifugo(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, EndpointCentrifugo) {
		return
	}
	s.cf.handler.ServeHTTP(hijackTracker{w, s.cf}, r)
}

// connecting checks the connect token as Centrifugo does: an expired one
// is error 109 "token expired" (the client fetches a new token and
// reconnects), any other bad one disconnects with 3500 "invalid token" (a
// terminal code: the client must not reconnect with it).
func (cf *cfServer) connecting(_ context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
	rt := cf.s.rt
	claims, err := rt.verify(e.Token, cf.s.o.now())
	switch {
	case errors.Is(err, errTokenExpired):
		rt.cfRefused.Add(1)
		cf.s.log.Debug("centrifugo connect refused", logErr, err)
		return centrifuge.ConnectReply{}, centrifuge.ErrorTokenExpired
	case err != nil:
		rt.cfRefused.Add(1)
		cf.s.log.Debug("centrifugo connect refused", logErr, err)
		return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
	}
	rt.cfConnects.Add(1)
	cf.s.log.Debug("centrifugo connected", "client_name", e.Name, "client_id", e.ClientID)
	return centrifuge.ConnectReply{
		Credentials:       &centrifuge.Credentials{UserID: claims.Sub, ExpireAt: claims.Exp},
		ClientSideRefresh: true,
	}, nil
}

func (cf *cfServer) connected(c *centrifuge.Client) {
	done := make(chan struct{})
	cf.mu.Lock()
	cf.clients[c] = done
	cf.mu.Unlock()
	// The library calls this once, last, when a connected client closes.
	c.OnDisconnect(func(centrifuge.DisconnectEvent) {
		cf.lastSub.Store(time.Now().UnixNano())
		cf.mu.Lock()
		delete(cf.clients, c)
		cf.mu.Unlock()
		close(done)
	})
	c.OnRefresh(func(e centrifuge.RefreshEvent, cb centrifuge.RefreshCallback) {
		rt := cf.s.rt
		claims, err := rt.verify(e.Token, cf.s.o.now())
		switch {
		case errors.Is(err, errTokenExpired):
			// The library closes the connection as expired (3005).
			rt.cfRefreshRefused.Add(1)
			cb(centrifuge.RefreshReply{Expired: true}, nil)
		case err != nil:
			rt.cfRefreshRefused.Add(1)
			cb(centrifuge.RefreshReply{}, centrifuge.DisconnectInvalidToken)
		default:
			rt.cfRefreshes.Add(1)
			cb(centrifuge.RefreshReply{ExpireAt: claims.Exp}, nil)
		}
	})
	c.OnUnsubscribe(func(centrifuge.UnsubscribeEvent) { cf.lastSub.Store(time.Now().UnixNano()) })
	c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
		if cf.s.hub.isRefused(e.Channel) {
			cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
			return
		}
		cf.s.log.Debug("centrifugo subscribed", logChannel, e.Channel)
		cb(centrifuge.SubscribeReply{}, nil)
	})
}

// publication is the data of a Centrifugo publication on Kick: the Pusher
// event and its data (a JSON string or object).
type publication struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// publish sends an event to the subscribers of ch; data is the event's
// JSON, built only when someone listens.
func (cf *cfServer) publish(ch, event string, data func() []byte) {
	if cf.node.Hub().NumSubscribers(ch) == 0 {
		return
	}
	rt := cf.s.rt
	raw := data()
	enc := DataEncoding(rt.encoding.Load())
	if enc == DataAlternate {
		enc = DataString
		if rt.pubSerial.Add(1)%2 == 0 {
			enc = DataObject
		}
	}
	if enc == DataString {
		raw = marshal(string(raw))
		rt.cfPubString.Add(1)
	} else {
		rt.cfPubObject.Add(1)
	}
	if _, err := cf.node.Publish(ch, marshal(publication{Event: event, Data: raw})); err != nil {
		cf.s.log.Warn("centrifugo publish failed", logChannel, ch, logErr, err)
		return
	}
	rt.cfPublications.Add(1)
}

// closeAll disconnects every client with d and returns when they are
// closed (the library closes each in a goroutine of its own), or when the
// sim closes. The hub's clients count, not only cf.clients: the library
// writes the connect reply before it calls the connect handler, so a client
// can be connected by its own account and not yet in cf.clients.
func (cf *cfServer) closeAll(d centrifuge.Disconnect) {
	hub := cf.node.Hub().Connections()
	cf.mu.Lock()
	pending := make(map[*centrifuge.Client]<-chan struct{}, len(hub)+len(cf.clients))
	for c, done := range cf.clients {
		pending[c] = done
	}
	for _, c := range hub {
		if _, ok := pending[c]; !ok {
			// Its connect handler has not run (or never will, if the close
			// wins): its connection's context ends once the close is done.
			pending[c] = c.Context().Done()
		}
	}
	cf.mu.Unlock()
	for c := range pending {
		c.Disconnect(d)
	}
	for _, done := range pending {
		select {
		case <-done:
		case <-cf.s.ctx.Done():
			return
		}
	}
}

func (cf *cfServer) counts() (clients, subscriptions int) {
	h := cf.node.Hub()
	return h.NumClients(), h.NumSubscriptions()
}

// dropAll closes every hijacked connection without a close frame; with
// final, no connection is accepted any more.
func (cf *cfServer) dropAll(final bool) {
	cf.mu.Lock()
	cf.closed = cf.closed || final
	conns := make([]*cfConn, 0, len(cf.conns))
	for c := range cf.conns {
		conns = append(conns, c)
	}
	cf.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// subscribers is how many connections are subscribed to ch.
func (cf *cfServer) subscribers(ch string) int { return cf.node.Hub().NumSubscribers(ch) }

func (cf *cfServer) shutdown(ctx context.Context) error {
	// Clients are disconnected with 3001 "shutdown" (reconnect later).
	err := cf.node.Shutdown(ctx)
	cf.dropAll(true)
	// Let the library's delayed broker unsubscriptions end, so that no
	// goroutine of the sim outlives Close.
	if last := cf.lastSub.Load(); last != 0 {
		t := time.NewTimer(time.Until(time.Unix(0, last).Add(brokerUnsubscribeDelay + 100*time.Millisecond)))
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if err != nil {
		return fmt.Errorf("kicksim: centrifuge shutdown: %w", err)
	}
	return nil
}

// CentrifugoURL is the Centrifugo WebSocket URL (KICK_CENTRIFUGO_URL), the
// url negotiation offers.
func (s *Sim) CentrifugoURL() string {
	b := s.baseURL()
	if b == "" {
		return ""
	}
	return "ws" + strings.TrimPrefix(b, "http") + centrifugoPath
}

// CentrifugoSubscriptions is the number of Centrifugo connections
// subscribed to a channel (e.g. "channel.2500016").
func (s *Sim) CentrifugoSubscriptions(channel string) int { return s.cf.subscribers(channel) }

// CloseCentrifugo disconnects every Centrifugo client with a close code and
// reason (e.g. 3011 force reconnect, 3503 force disconnect) and returns
// when they are closed.
func (s *Sim) CloseCentrifugo(code int, reason string) {
	s.log.Info("closing all centrifugo connections", logCode, code)
	s.cf.closeAll(centrifuge.Disconnect{Code: uint32(code), Reason: reason})
}

// DropCentrifugo cuts every Centrifugo connection without a close frame
// (the client sees an abnormal closure, 1006, and reconnects).
func (s *Sim) DropCentrifugo() {
	s.log.Info("dropping all centrifugo connections")
	s.cf.dropAll(false)
}
