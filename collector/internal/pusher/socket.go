package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// socket is one shard: one WebSocket at a time, reconnected by run.
type socket struct {
	c    *Client
	id   int
	wake chan struct{} // poked when want or retired changes

	// Guarded by c.mu.
	want    map[int64]struct{} // channel ids that should be subscribed
	parked  map[int64]struct{} // channels placed after a stop, not yet reported
	retired bool               // no channels left: close and end
	status  SocketStatus

	// Owned by run's goroutine.
	blind   bool               // a socket-down Blind coverage observation is outstanding
	refused map[int64]struct{} // channels reported blind because Kick refused them
	everUp  bool               // a connection has been established before (or the client replaces another provider)
	shown   bool               // no need to report the confirmed streamers seeing on the first settle (false when replacing a blind provider)
	attempt int                // consecutive failed sessions, for the backoff
	recent  immediates         // the latest reconnects made at once
}

func newSocket(c *Client, id int) *socket {
	return &socket{c: c, id: id, wake: make(chan struct{}, 1), want: make(map[int64]struct{}), parked: make(map[int64]struct{}), refused: make(map[int64]struct{}),
		status: SocketStatus{State: StateConnecting}, everUp: c.o.Reconcile, shown: !c.o.Reconcile}
}

func (s *socket) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *socket) update(f func(*SocketStatus)) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	f(&s.status)
}

func (s *socket) isRetired() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.retired
}

// wanted returns the channel ids and user ids of the socket.
func (s *socket) wanted() (channels, users []int64) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	channels = make([]int64, 0, len(s.want))
	users = make([]int64, 0, len(s.want))
	for ch := range s.want {
		channels = append(channels, ch)
		users = append(users, s.c.users[ch])
	}
	return channels, users
}

// sessionEnd says how a connection ended.
type sessionEnd struct {
	code      int           // close code received; 1006 without a close frame; 0 if none
	err       error         // what went wrong
	immediate bool          // reconnect at once (our own pong timeout)
	lasted    time.Duration // time since connection_established (0 if never)
}

// policy is what the close-code families ask for (kick-api.md §3).
type policy int

const (
	policyBackoff policy = iota
	policyStop
	policyBackoffFloor
	policyNow
)

func policyFor(code int) policy {
	switch {
	case code >= 4000 && code <= 4099:
		return policyStop
	case code >= 4100 && code <= 4199:
		return policyBackoffFloor
	case code >= 4200 && code <= 4299:
		return policyNow
	}
	return policyBackoff
}

// run keeps the socket connected until ctx ends or the socket is retired.
func (s *socket) run(ctx context.Context) {
	log := s.c.log.With(logkeys.Socket, s.id)
	for {
		if ctx.Err() != nil || s.isRetired() {
			return
		}
		s.update(func(st *SocketStatus) { st.State = StateConnecting; down(st) })
		end := s.session(ctx, log)
		if ctx.Err() != nil || s.isRetired() {
			return
		}
		errText := ""
		if end.err != nil {
			errText = end.err.Error()
		}
		if policyFor(end.code) == policyStop {
			s.update(func(st *SocketStatus) {
				st.State, st.LastCloseCode, st.LastError = StateStopped, end.code, errText
				down(st)
			})
			log.Error("pusher socket stopped by close code; not reconnecting", logkeys.CloseCode, end.code, logkeys.Err, errText)
			s.c.refuse(end.code, closeText(end.err))
			s.park(ctx, fmt.Sprintf("%s by close code %d", StoppedReason, end.code))
			return
		}
		s.goBlind(ctx)
		if end.lasted >= stableAfter {
			s.attempt, s.recent = 0, nil
		}
		var delay time.Duration
		switch p := policyFor(end.code); {
		case (p == policyNow || end.immediate) && s.recent.allow(time.Now()):
			delay = 0
		case p == policyBackoffFloor:
			delay = minBackoff4100 + s.jitter()
		default:
			delay = s.jitter()
		}
		if delay > 0 {
			s.attempt++
		}
		s.update(func(st *SocketStatus) {
			st.State, st.LastCloseCode, st.LastError, st.Backoff = StateBackoff, end.code, errText, delay
			down(st)
			st.Reconnects++
		})
		s.c.cnt.Reconnects.Add(1)
		log.Warn("pusher socket down; reconnecting", logkeys.CloseCode, end.code, logkeys.Err, errText, logkeys.Backoff, delay)
		if !s.sleep(ctx, delay) {
			return
		}
	}
}

// A server that keeps asking to reconnect at once (4200–4299), or keeps
// missing pongs, is not hammered: after maxImmediate reconnects at once
// within immediateWindow, the next ones back off like any other failure,
// until a connection stays up for stableAfter.
const (
	maxImmediate    = 3
	immediateWindow = 10 * time.Second
)

// immediates holds the times of the latest reconnects made at once.
type immediates []time.Time

// allow reports whether a reconnect may happen at once at now (fewer than
// maxImmediate within immediateWindow before it), and records it if so.
func (im *immediates) allow(now time.Time) bool {
	*im = slices.DeleteFunc(*im, func(t time.Time) bool { return now.Sub(t) >= immediateWindow })
	if len(*im) >= maxImmediate {
		return false
	}
	*im = append(*im, now)
	return true
}

// jitter is the wait before the next reconnect.
func (s *socket) jitter() time.Duration {
	return backoff.Jitter(s.c.o.BackoffBase, s.c.o.BackoffMax, s.attempt)
}

// sleep waits d; false when ctx ended or the socket was retired.
func (s *socket) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-s.wake:
			if s.isRetired() {
				return false
			}
		}
	}
}

// park holds the channels of a stopped socket until ctx ends, reporting
// blind with reason every channel it has, then every one Subscribe places
// on it later.
func (s *socket) park(ctx context.Context, reason string) {
	for all := true; ; all = false {
		s.coverage(ctx, s.takeParked(all), true, reason)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			if s.isRetired() { // emptied just before it stopped
				return
			}
		}
	}
}

// takeParked returns the users of the channels parked since the last call
// (of every channel when all) and forgets them.
func (s *socket) takeParked(all bool) []int64 {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	chs := s.parked
	if all {
		chs = s.want
	}
	var users []int64
	for ch := range chs {
		if _, ok := s.want[ch]; ok {
			users = append(users, s.c.users[ch])
		}
	}
	clear(s.parked)
	return users
}

// goBlind reports the socket's streamers blind, once per outage.
func (s *socket) goBlind(ctx context.Context) {
	if s.blind {
		return
	}
	_, users := s.wanted()
	s.blind = true
	s.coverage(ctx, users, true, BlindReason)
}

// coverage reports users blind or seen again. It never sends an empty
// list, which would mean every streamer.
func (s *socket) coverage(ctx context.Context, users []int64, blind bool, reason string) {
	if len(users) == 0 {
		return
	}
	if blind && s.c.o.Note != "" {
		reason = s.c.o.Note + "; " + reason
	}
	s.c.emit(ctx, observation.Observation{Kind: observation.Coverage, Source: kickmonv1.Source_SOURCE_PUSHER, UserIDs: users, Blind: blind, Reason: reason, ObservedAt: time.Now()})
}

// subState is the state of one channel on the current connection.
type subState int

const (
	subPending subState = iota
	subOK
	subFailed
	subStates // the number of states
)

// conn is one connection's state, owned by session.
type conn struct {
	s           *socket
	ws          *websocket.Conn
	wire        map[int64]subState
	count       [subStates]int   // channels of wire in each state
	why         map[int64]string // the coverage reason of each refused channel
	fresh       []int64          // channels answered since the last settle
	established time.Time
	idle        time.Duration // effective activity timeout
	reconcile   bool          // waiting for every subscription to settle
	reconnect   bool          // an earlier connection of the socket was established
}

// session dials, subscribes and serves one connection until it ends.
func (s *socket) session(ctx context.Context, log *slog.Logger) sessionEnd {
	o := &s.c.o
	ws, resp, err := s.c.dialer.DialContext(ctx, o.URL, o.Header)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("dial pusher: %w (HTTP %d)", err, resp.StatusCode)
		} else {
			err = fmt.Errorf("dial pusher: %w", err)
		}
		return sessionEnd{err: err}
	}
	ws.SetReadLimit(o.MaxFrameBytes)
	msgs := make(chan []byte)
	errc := make(chan error, 1)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // owned by this session: it waits for readerDone below
		defer close(readerDone)
		for {
			mt, data, err := ws.ReadMessage()
			if err != nil {
				errc <- err
				return
			}
			if mt != websocket.TextMessage {
				s.c.cnt.BadFrames.Add(1)
				continue
			}
			select {
			case msgs <- data:
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		_ = ws.Close()
		<-readerDone
	}()

	c := &conn{s: s, ws: ws, wire: make(map[int64]subState), why: make(map[int64]string), idle: o.ActivityTimeout}
	start := time.Now()
	lastRecv, pingAt := start, time.Time{}
	end := func(e sessionEnd) sessionEnd {
		if !c.established.IsZero() {
			e.lasted = time.Since(c.established)
		}
		return e
	}
	timer := time.NewTimer(o.PongTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.closeWith(websocket.CloseNormalClosure, "client shutdown")
			return end(sessionEnd{code: websocket.CloseNormalClosure, err: ctx.Err()})
		case err := <-errc:
			code := websocket.CloseAbnormalClosure
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			return end(sessionEnd{code: code, err: fmt.Errorf("read: %w", err)})
		case raw := <-msgs:
			lastRecv, pingAt = time.Now(), time.Time{}
			if err := c.handle(ctx, raw, log); err != nil {
				return end(sessionEnd{err: err})
			}
		case <-s.wake:
			if s.isRetired() {
				c.closeWith(websocket.CloseNormalClosure, "no channels left")
				return end(sessionEnd{code: websocket.CloseNormalClosure})
			}
			if !c.established.IsZero() {
				if err := c.sync(); err != nil {
					return end(sessionEnd{err: err})
				}
				c.settle(ctx)
			}
		case <-timer.C:
		}
		now := time.Now()
		var next time.Time
		switch {
		case c.established.IsZero():
			next = start.Add(o.PongTimeout)
			if !now.Before(next) {
				c.closeWith(websocket.CloseNormalClosure, "")
				return end(sessionEnd{err: fmt.Errorf("no connection_established within %v", o.PongTimeout), immediate: true})
			}
		case !pingAt.IsZero():
			next = pingAt.Add(o.PongTimeout)
			if !now.Before(next) {
				c.closeWith(websocket.CloseNormalClosure, "")
				return end(sessionEnd{err: fmt.Errorf("no pong within %v", o.PongTimeout), immediate: true})
			}
		default:
			next = lastRecv.Add(c.idle)
			if !now.Before(next) {
				if err := c.write(evPing, struct{}{}); err != nil {
					return end(sessionEnd{err: err})
				}
				pingAt = now
				next = now.Add(o.PongTimeout)
			}
		}
		timer.Reset(next.Sub(now))
	}
}

// write sends one client→server message (data as an object).
func (c *conn) write(event string, data any) error {
	b, err := json.Marshal(struct {
		Event string `json:"event"`
		Data  any    `json:"data"`
	}{event, data})
	if err != nil {
		return fmt.Errorf("encode %s: %w", event, err)
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write %s: %w", event, err)
	}
	return nil
}

func (c *conn) closeWith(code int, reason string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

type channelData struct {
	Channel string `json:"channel"`
	Auth    string `json:"auth"`
}

// sync subscribes the wanted channels not on the wire and unsubscribes the
// ones no longer wanted.
func (c *conn) sync() error {
	want, _ := c.s.wanted()
	set := make(map[int64]struct{}, len(want))
	for _, ch := range want {
		set[ch] = struct{}{}
		if _, ok := c.wire[ch]; ok {
			continue
		}
		if err := c.write(evSubscribe, channelData{Channel: channelName(ch)}); err != nil {
			return err
		}
		c.wire[ch] = subPending
		c.count[subPending]++
	}
	for ch := range c.wire {
		if _, ok := set[ch]; ok {
			continue
		}
		if err := c.write(evUnsubscribe, struct {
			Channel string `json:"channel"`
		}{channelName(ch)}); err != nil {
			return err
		}
		c.count[c.wire[ch]]--
		delete(c.wire, ch)
		delete(c.why, ch)
		delete(c.s.refused, ch)
	}
	return nil
}

// ack settles a pending channel as ok or refused (why is then the
// coverage reason).
func (c *conn) ack(ch int64, st subState, why string) {
	if cur, ok := c.wire[ch]; !ok || cur != subPending {
		return
	}
	c.count[subPending]--
	c.count[st]++
	c.wire[ch] = st
	if st == subFailed {
		c.why[ch] = why
		c.s.c.cnt.Refusals.Add(1)
	}
	c.fresh = append(c.fresh, ch)
}

// settle reports the subscriptions answered since the last call. After a
// (re)connect it waits until every wanted channel has been confirmed or
// refused; then the confirmed streamers are no longer blind, and after a
// reconnect (or an outage) the Checker reconciles them all, since Kick
// sends only transitions and some may have happened while the socket was
// down. A refused channel is reported blind with the server's reason, on a
// first connect too; it stays covered by the other sources, and is asked
// for again on the next connection.
func (c *conn) settle(ctx context.Context) {
	s := c.s
	s.update(func(st *SocketStatus) { st.Channels, st.Refused = c.count[subOK], c.count[subFailed] })
	if c.reconcile && c.count[subPending] > 0 {
		return
	}
	var back []int64
	refused := make(map[string][]int64)
	for _, ch := range c.fresh {
		uid, ok := s.c.userOf(ch)
		if !ok {
			continue
		}
		_, wasRefused := s.refused[ch]
		switch c.wire[ch] {
		case subOK:
			if s.blind || wasRefused || !s.shown {
				back = append(back, uid)
			}
			delete(s.refused, ch)
		case subFailed:
			s.refused[ch] = struct{}{}
			refused[c.why[ch]] = append(refused[c.why[ch]], uid)
		}
	}
	c.fresh = c.fresh[:0]
	s.coverage(ctx, back, false, BlindReason)
	for _, why := range slices.Sorted(maps.Keys(refused)) {
		s.coverage(ctx, refused[why], true, why)
	}
	if !c.reconcile {
		return
	}
	c.reconcile = false
	s.blind, s.shown = false, true
	if _, users := s.wanted(); c.reconnect && s.c.o.Checker != nil && len(users) > 0 {
		s.c.o.Checker.CheckNow(users...)
	}
}

// handle processes one frame.
func (c *conn) handle(ctx context.Context, raw []byte, log *slog.Logger) error {
	s := c.s
	s.c.cnt.Frames.Add(1)
	f, err := decodeFrame(raw)
	if err != nil {
		s.c.cnt.BadFrames.Add(1)
		log.Debug("bad pusher frame", logkeys.Err, err)
		return nil
	}
	switch f.Event {
	case evConnectionEstablished:
		var d struct {
			SocketID        string       `json:"socket_id"`
			ActivityTimeout kickjson.Int `json:"activity_timeout"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil {
			return fmt.Errorf("decode %s: %w", f.Event, err)
		}
		if !c.established.IsZero() {
			return nil
		}
		c.established = time.Now()
		if d.ActivityTimeout > 0 {
			c.idle = min(c.idle, time.Duration(d.ActivityTimeout)*time.Second)
		}
		s.update(func(st *SocketStatus) {
			st.State, st.SocketID, st.ConnectedSince = StateConnected, d.SocketID, c.established
		})
		log.Debug("pusher connected", logkeys.SocketID, d.SocketID)
		c.reconcile, c.reconnect, s.everUp = true, s.everUp, true
		if err := c.sync(); err != nil {
			return err
		}
		c.settle(ctx)
	case evPing:
		s.c.cnt.ServerPings.Add(1)
		return c.write(evPong, struct{}{})
	case evPong:
	case evError:
		var d struct {
			Message string       `json:"message"`
			Code    kickjson.Int `json:"code"`
		}
		_ = json.Unmarshal(f.Data, &d)
		log.Warn("pusher error", logkeys.CloseCode, int64(d.Code), logkeys.Err, d.Message)
		s.update(func(st *SocketStatus) { st.LastError = fmt.Sprintf("pusher:error %d: %s", d.Code, d.Message) })
		// Pusher refuses a subscription with a pusher:error naming the
		// channel in its message (the frame has no channel).
		for _, ch := range channelsIn(d.Message) {
			c.ack(ch, subFailed, RefusedReason+": "+d.Message)
		}
		c.settle(ctx)
	case evSubscriptionSucceeded:
		c.ack(channelIDOf(f.Channel), subOK, "")
		c.settle(ctx)
	case evSubscriptionError:
		why := RefusedReason + ": " + refusalText(f.Data)
		log.Warn("pusher subscription refused", logkeys.Channel, f.Channel, logkeys.Reason, why)
		s.update(func(st *SocketStatus) { st.LastError = why + " (" + f.Channel + ")" })
		c.ack(channelIDOf(f.Channel), subFailed, why)
		c.settle(ctx)
	default:
		o, ok, err := s.c.cnt.Deliver(f, realtime.Pusher, s.c.userOf)
		switch {
		case err != nil:
			log.Debug("bad pusher event", logkeys.Event, f.Event, logkeys.Err, err)
		case ok:
			s.c.emit(ctx, o)
		case !strings.HasPrefix(f.Event, "pusher"):
			log.Debug("pusher event not delivered (ignored or unmatched)", logkeys.Event, f.Event, logkeys.Channel, f.Channel)
		}
	}
	return nil
}

// closeText is the server's reason in a close error ("App key … not in
// this cluster"), else the error's text.
func closeText(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Text != "" {
		return ce.Text
	}
	if err == nil {
		return "closed"
	}
	return err.Error()
}
