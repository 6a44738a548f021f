// Package realtime is kickmon's realtime source: Kick's unofficial push
// feed, served by one of two providers, Pusher (package pusher) or
// Centrifugo (package centrifugo), which kick.com's own pages negotiate
// with web.kick.com since autumn 2026 (kick-api.md §2.7).
//
// It holds what the providers share: the Provider interface, one decoder
// of the feed's messages ({event, data} with data a JSON string or object,
// several messages per frame), the counters, the coverage reasons and the
// socket status; and the Manager, which negotiates the provider
// (KICK_REALTIME=auto|pusher|centrifugo|off), falls back to the configured
// URLs when negotiation fails, renegotiates with backoff when a provider
// keeps refusing, keeps every subscription across a switch, reports every
// streamer blind with the reason when nothing works, and describes it all
// for the status API and /metrics.
package realtime

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kickmon/kickmon/collector/internal/observation"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Provider names, as in negotiation answers, KICK_REALTIME and status.
const (
	Pusher     = "pusher"
	Centrifugo = "centrifugo"
)

// SourceOf is the event source of a provider.
func SourceOf(provider string) kickmonv1.Source {
	if provider == Centrifugo {
		return kickmonv1.Source_SOURCE_CENTRIFUGO
	}
	return kickmonv1.Source_SOURCE_PUSHER
}

// Provider is one realtime provider's client: it places the subscribed
// channels over its sockets, keeps them up, reconciles after a reconnect
// (resubscribe, then an out-of-turn check of every streamer on the socket),
// reports coverage per streamer, and turns the live-status events into
// observations.
type Provider interface {
	// Name is Pusher or Centrifugo.
	Name() string
	// Subscribe watches Kick channel channelID for streamer userID, at any
	// time; subscribing a known channel again only updates its user id.
	Subscribe(channelID, userID int64)
	// Unsubscribe stops watching channelID.
	Unsubscribe(channelID int64)
	// Run serves until ctx ends (nil), or until the provider refuses kickmon
	// for good (a *RefusedError: Pusher's 4000–4099 close codes,
	// Centrifugo's terminal codes, a refused token), after which the
	// Manager renegotiates.
	Run(ctx context.Context) error
	// Sockets describes every socket, in id order.
	Sockets() []SocketStatus
}

// RefusedError says a provider refuses kickmon: reconnecting with the same
// credentials would be refused again.
type RefusedError struct {
	Provider string
	Code     int    // close or disconnect code; 0 when none (a refused token)
	Reason   string // the server's words
}

func (e *RefusedError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("provider refused: %s %d %s", e.Provider, e.Code, e.Reason)
	}
	return fmt.Sprintf("provider refused: %s %s", e.Provider, e.Reason)
}

// State is the state of one socket.
type State string

// Socket states.
const (
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateBackoff    State = "backoff"
	StateStopped    State = "stopped"
)

// SocketStatus describes one socket for the status API.
type SocketStatus struct {
	ID       int    // kickmon's number of the socket (1, 2, …)
	SocketID string // the server's id of the current connection
	State    State
	// Wanted is the number of channels placed on the socket; Channels of
	// them are confirmed subscribed on the current connection, Refused were
	// refused by the server (both 0 while not connected). Only confirmed
	// channels are covered.
	Wanted, Channels, Refused int
	// ConnectedSince is when the current connection was established (zero
	// when not connected).
	ConnectedSince time.Time
	Reconnects     int
	// LastCloseCode is the close code of the last connection (1006 when it
	// ended without a close frame; 0 before any ended).
	LastCloseCode int
	LastError     string
	// Backoff is the wait before the current or last reconnect.
	Backoff time.Duration
}

// Coverage reasons of the streamers a socket cannot see; the Manager's own
// reasons (negotiation, refusal) are built from their errors.
const (
	// ReasonSocketDown: the socket carrying the streamer is down.
	ReasonSocketDown = "socket down"
	// ReasonRefused starts the reason of a channel whose subscription the
	// server refused; the server's words follow.
	ReasonRefused = "subscription refused"
)

// Stats counts what a provider received.
type Stats struct {
	Frames       int64 // text frames (Pusher) or publications (Centrifugo) read
	Observations int64 // status observations emitted
	Ignored      int64 // channel events that are not live-status events
	Unmatched    int64 // status events for channels nobody subscribed to
	BadFrames    int64 // frames or events that could not be decoded
	ServerPings  int64 // server pings answered
	Refusals     int64 // subscriptions the server refused
	Reconnects   int64 // connections lost and made again
}

// Counters are a provider's Stats, safe for concurrent use. The Manager
// keeps one per provider name, so they survive a provider's restart.
type Counters struct {
	Frames, Observations, Ignored, Unmatched, BadFrames, ServerPings, Refusals, Reconnects atomic.Int64
}

// Stats returns the counters' values.
func (c *Counters) Stats() Stats {
	return Stats{
		Frames: c.Frames.Load(), Observations: c.Observations.Load(), Ignored: c.Ignored.Load(),
		Unmatched: c.Unmatched.Load(), BadFrames: c.BadFrames.Load(), ServerPings: c.ServerPings.Load(),
		Refusals: c.Refusals.Load(), Reconnects: c.Reconnects.Load(),
	}
}

// Deliver turns one decoded message into an observation of the streamer
// its channel belongs to, counting it: false when there is nothing to send
// (not a status event, a bad one, or a channel nobody subscribed to).
func (c *Counters) Deliver(m Message, provider string, userOf func(channelID int64) (int64, bool)) (observation.Observation, bool, error) {
	o, chID, kind, err := Parse(m)
	switch {
	case kind == KindIgnored:
		c.Ignored.Add(1)
		return o, false, nil
	case err != nil:
		c.BadFrames.Add(1)
		return o, false, err
	}
	uid, ok := userOf(chID)
	if !ok {
		c.Unmatched.Add(1)
		return o, false, nil
	}
	o.Source, o.UserID, o.ObservedAt = SourceOf(provider), uid, time.Now()
	c.Observations.Add(1)
	return o, true, nil
}
