package centrifugo

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	centrifuge "github.com/centrifugal/centrifuge-go"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/realtime"
)

// socket is one centrifuge-go client carrying up to ChannelsPerSocket
// channels. Its fields are guarded by Client.mu; centrifuge-go runs the
// callbacks of one client one at a time, in order.
type socket struct {
	c  *Client
	id int
	cl *centrifuge.Client

	subs       map[int64]*centrifuge.Subscription
	confirmed  map[int64]bool   // subscribed on the current connection
	refusedWhy map[int64]string // refused on the current connection, with the reason
	status     realtime.SocketStatus
	everUp     bool           // a connection was established before (or the client replaces a provider)
	shown      bool           // no need to report confirmed streamers seeing on the first settle
	blind      bool           // a socket-down report is outstanding
	reconcile  bool           // waiting for every channel to settle after a (re)connect
	reported   map[int64]bool // channels reported refused
	retired    bool
}

func (c *Client) newSocket(id int) *socket {
	s := &socket{c: c, id: id, subs: make(map[int64]*centrifuge.Subscription), confirmed: make(map[int64]bool),
		refusedWhy: make(map[int64]string), reported: make(map[int64]bool),
		status: realtime.SocketStatus{State: realtime.StateConnecting}, everUp: c.o.Reconcile, shown: !c.o.Reconcile}
	h := c.o.Header.Clone()
	if h == nil {
		h = make(map[string][]string)
	}
	if c.o.Origin != "" {
		h.Set("Origin", c.o.Origin)
	}
	s.cl = centrifuge.NewJsonClient(c.o.URL, centrifuge.Config{
		GetToken: c.token, Name: clientName, Header: h,
		MinReconnectDelay: c.o.MinReconnect, MaxReconnectDelay: c.o.MaxReconnect,
		MaxServerPingDelay: c.o.PingDelay, HandshakeTimeout: 15 * time.Second,
	})
	log := c.log.With(logkeys.Socket, id)
	s.cl.OnConnecting(func(e centrifuge.ConnectingEvent) { s.connecting(e, log) })
	s.cl.OnConnected(func(e centrifuge.ConnectedEvent) { s.connected(e, log) })
	s.cl.OnDisconnected(func(e centrifuge.DisconnectedEvent) { s.disconnected(e, log) })
	s.cl.OnError(func(e centrifuge.ErrorEvent) {
		c.mu.Lock()
		s.status.LastError = e.Error.Error()
		c.mu.Unlock()
		log.Debug("centrifugo error", logkeys.Err, e.Error)
		var te centrifuge.TransportError
		if errors.As(e.Error, &te) {
			s.down() // a connect that failed: blind until one works
		}
	})
	return s
}

// connect starts the client; c.mu is not held (callbacks take it).
func (s *socket) connect() {
	if err := s.cl.Connect(); err != nil {
		s.c.log.Warn("centrifugo connect", logkeys.Socket, s.id, logkeys.Err, err)
	}
}

// add makes the subscription of a channel, for the caller to Subscribe once
// c.mu is released; c.mu is held.
func (s *socket) add(ch int64) *centrifuge.Subscription {
	name := realtime.ChannelName(ch)
	sub, err := s.cl.NewSubscription(name)
	if err != nil { // already there (a race with a removal): reuse it
		var ok bool
		if sub, ok = s.cl.GetSubscription(name); !ok {
			s.c.log.Warn("centrifugo subscription", logkeys.Channel, name, logkeys.Err, err)
			return nil
		}
	}
	sub.OnSubscribed(func(centrifuge.SubscribedEvent) { s.settled(ch, "") })
	sub.OnSubscribing(func(centrifuge.SubscribingEvent) {
		s.c.mu.Lock()
		delete(s.confirmed, ch)
		s.c.mu.Unlock()
	})
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		if e.Code == 0 || e.Code == 2 { // our Unsubscribe, or the client closed
			return
		}
		s.c.cnt.Refusals.Add(1)
		s.settled(ch, fmt.Sprintf("%s: %s (%d)", realtime.ReasonRefused, e.Reason, e.Code))
	})
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) {
		s.c.mu.Lock()
		s.status.LastError = fmt.Sprintf("%s: %v", name, e.Error)
		s.c.mu.Unlock()
	})
	sub.OnPublication(func(e centrifuge.PublicationEvent) { s.publication(name, e.Data) })
	s.subs[ch] = sub
	return sub
}

// remove forgets a channel and returns its subscription, for the caller to
// unsubscribe once c.mu is released; c.mu is held.
func (s *socket) remove(ch int64) *centrifuge.Subscription {
	sub, ok := s.subs[ch]
	if !ok {
		return nil
	}
	delete(s.subs, ch)
	delete(s.confirmed, ch)
	delete(s.refusedWhy, ch)
	delete(s.reported, ch)
	return sub
}

// users returns the user ids of the given channels (all when nil); c.mu is held.
func (s *socket) users(chs []int64) []int64 {
	if chs == nil {
		chs = slices.Collect(maps.Keys(s.subs))
	}
	out := make([]int64, 0, len(chs))
	for _, ch := range chs {
		if uid, ok := s.c.users[ch]; ok {
			out = append(out, uid)
		}
	}
	return out
}

func (s *socket) connecting(e centrifuge.ConnectingEvent, log *slog.Logger) {
	c := s.c
	c.mu.Lock()
	wasUp := s.status.State == realtime.StateConnected
	s.status.State, s.status.SocketID, s.status.ConnectedSince = realtime.StateConnecting, "", time.Time{}
	clear(s.confirmed)
	clear(s.refusedWhy)
	if wasUp {
		s.status.Reconnects++
		s.status.LastCloseCode, s.status.LastError = int(e.Code), e.Reason
		c.cnt.Reconnects.Add(1)
	}
	c.mu.Unlock()
	if wasUp {
		log.Warn("centrifugo connection lost; reconnecting", logkeys.CloseCode, e.Code, logkeys.Reason, e.Reason)
		s.down()
	}
}

func (s *socket) connected(e centrifuge.ConnectedEvent, log *slog.Logger) {
	c := s.c
	c.mu.Lock()
	s.status.State, s.status.SocketID, s.status.ConnectedSince = realtime.StateConnected, e.ClientID, time.Now()
	s.reconcile = true
	var again []*centrifuge.Subscription
	for _, sub := range s.subs {
		if sub.State() == centrifuge.SubStateUnsubscribed { // refused on the last connection: ask again
			again = append(again, sub)
		}
	}
	c.mu.Unlock()
	log.Debug("centrifugo connected", logkeys.SocketID, e.ClientID)
	for _, sub := range again {
		_ = sub.Subscribe()
	}
	s.settled(0, "")
}

func (s *socket) disconnected(e centrifuge.DisconnectedEvent, log *slog.Logger) {
	c := s.c
	c.mu.Lock()
	s.status.State, s.status.SocketID, s.status.ConnectedSince = realtime.StateStopped, "", time.Time{}
	s.status.LastCloseCode = int(e.Code)
	retired, lastTok := s.retired, c.lastTok
	users := s.users(nil)
	c.mu.Unlock()
	if e.Code == 0 || retired { // our own Disconnect or Close
		return
	}
	reason := e.Reason
	if e.Code == 1 && lastTok != "" { // centrifuge-go's "unauthorized": the token was refused
		reason = lastTok // already "token refused: …"
	}
	c.mu.Lock()
	s.status.LastError = reason
	c.mu.Unlock()
	log.Warn("centrifugo refused the connection; not reconnecting", logkeys.CloseCode, e.Code, logkeys.Reason, reason)
	c.coverage(users, true, fmt.Sprintf("%s stopped by code %d: %s", realtime.Centrifugo, e.Code, reason))
	code := int(e.Code)
	if code < 3000 {
		code = 0 // centrifuge-go's own codes (1 unauthorized, 2 bad protocol, 3 message size): no close code
	}
	c.refuse(code, reason)
}

// report is a coverage report to send once c.mu is released.
type report struct {
	users []int64
	blind bool
	why   string
}

// settled records a channel's answer (why is the refusal, "" for
// subscribed; ch 0 only re-evaluates). After a (re)connect, once every
// channel has answered, the streamers seen again are reported seeing, the
// refused ones blind, and after a reconnect the Checker reconciles them
// all; outside that, a channel reports its own answer when it changes.
func (s *socket) settled(ch int64, why string) {
	c := s.c
	var reports []report
	var check []int64
	c.mu.Lock()
	if ch != 0 {
		if _, ok := s.subs[ch]; !ok {
			c.mu.Unlock()
			return
		}
		if why == "" {
			s.confirmed[ch] = true
			delete(s.refusedWhy, ch)
		} else {
			s.refusedWhy[ch] = why
			delete(s.confirmed, ch)
		}
	}
	complete := s.status.State == realtime.StateConnected && len(s.confirmed)+len(s.refusedWhy) >= len(s.subs)
	switch {
	case s.reconcile && complete:
		s.reconcile = false
		var back []int64
		refused := map[string][]int64{}
		for ch := range s.subs {
			if w, ok := s.refusedWhy[ch]; ok {
				if !s.reported[ch] {
					s.reported[ch] = true
					refused[w] = append(refused[w], s.c.users[ch])
				}
				continue
			}
			if s.blind || s.reported[ch] || !s.shown {
				back = append(back, s.c.users[ch])
			}
			delete(s.reported, ch)
		}
		reports = append(reports, report{users: back})
		for _, w := range slices.Sorted(maps.Keys(refused)) {
			reports = append(reports, report{refused[w], true, w})
		}
		if s.everUp {
			check = s.users(nil)
		}
		s.blind, s.shown, s.everUp = false, true, true
	case !s.reconcile && ch != 0:
		uid := s.c.users[ch]
		switch {
		case why != "" && !s.reported[ch]:
			s.reported[ch] = true
			reports = append(reports, report{[]int64{uid}, true, why})
		case why == "" && s.reported[ch]:
			delete(s.reported, ch)
			reports = append(reports, report{users: []int64{uid}})
		}
	}
	c.mu.Unlock()
	for _, r := range reports {
		c.coverage(r.users, r.blind, r.why)
	}
	if len(check) > 0 && c.o.Checker != nil {
		c.o.Checker.CheckNow(check...)
	}
}

// down reports the socket's streamers blind, once per outage.
func (s *socket) down() {
	c := s.c
	c.mu.Lock()
	var users []int64
	if !s.blind && s.status.State != realtime.StateConnected && !s.retired {
		s.blind = true
		users = s.users(nil)
	}
	c.mu.Unlock()
	c.coverage(users, true, realtime.Centrifugo+" "+realtime.ReasonSocketDown)
}

// publication delivers the status events of one publication.
func (s *socket) publication(channel string, data []byte) {
	c := s.c
	c.cnt.Frames.Add(1)
	ms, err := realtime.DecodeMessages(data)
	if err != nil {
		c.cnt.BadFrames.Add(1)
		c.log.Debug("bad centrifugo publication", logkeys.Channel, channel, logkeys.Err, err)
	}
	for _, m := range ms {
		if m.Channel == "" {
			m.Channel = channel
		}
		o, ok, err := c.cnt.Deliver(m, realtime.Centrifugo, c.userOf)
		switch {
		case err != nil:
			c.log.Debug("bad centrifugo event", logkeys.Event, m.Event, logkeys.Err, err)
		case ok:
			c.emit(o)
		}
	}
}
