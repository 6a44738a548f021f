package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Modes of KICK_REALTIME.
const (
	ModeAuto       = "auto"
	ModePusher     = Pusher
	ModeCentrifugo = Centrifugo
	ModeOff        = "off"
)

// Modes lists the valid KICK_REALTIME values.
var Modes = []string{ModeAuto, ModePusher, ModeCentrifugo, ModeOff}

// Defaults of the Manager's timing.
const (
	// DefaultRetryBase and DefaultRetryMax bound the backoff between
	// negotiation rounds when every provider failed.
	DefaultRetryBase = 5 * time.Second
	DefaultRetryMax  = 10 * time.Minute
	// DefaultRecheck is how often a fallback provider, taken because
	// negotiation failed, asks negotiation again.
	DefaultRecheck = 5 * time.Minute
	// stableAfter: a provider up this long starts the backoff over.
	stableAfter = time.Minute
)

// Start is what a Factory gets to build a provider.
type Start struct {
	Offer    Offer
	Counters *Counters // the provider's counters, kept across restarts
	// Reconcile: the provider replaces another (or an outage), so its
	// first connection reconciles like a reconnect.
	Reconcile bool
	// Note is prefixed to the provider's blind coverage reasons (why it is
	// a fallback, e.g. "negotiation: 403 blocked"); empty when negotiated.
	Note string
	// Token fetches a connection token (Centrifugo); it counts renewals
	// and records the expiry for status.
	Token func(ctx context.Context) (string, error)
}

// Factory builds a provider for an offer.
type Factory func(Start) (Provider, error)

// ErrTokenRefused wraps a token request Kick refused (401/403 JSON).
var ErrTokenRefused = errors.New("token refused")

// Options configure a Manager.
type Options struct {
	// Mode is KICK_REALTIME (ModeAuto when empty).
	Mode string
	// Negotiator asks Kick for the providers; nil: fallbacks only.
	Negotiator *Negotiator
	// PusherURL is KICK_PUSHER_URL: the Pusher fallback and the template
	// of negotiated Pusher URLs; empty turns Pusher off.
	PusherURL string
	// CentrifugoURL is KICK_CENTRIFUGO_URL, the Centrifugo fallback
	// (empty: none).
	CentrifugoURL string
	// AllowInsecure accepts negotiated ws:// URLs (KICKMON_ALLOW_INSECURE).
	AllowInsecure bool
	// New builds the providers, by name.
	New map[string]Factory
	// Out receives the Manager's coverage observations. Required.
	Out chan<- observation.Observation
	// RetryBase, RetryMax, Recheck: see the defaults.
	RetryBase, RetryMax, Recheck time.Duration
	Logger                       *slog.Logger
}

// Manager runs the realtime source: one provider at a time, chosen by
// negotiation. It implements the engine's Subscribe/Unsubscribe.
type Manager struct {
	o   Options
	log *slog.Logger

	// subMu orders the calls into the provider (the flush of pending
	// changes, the replay after a switch). It is never held with mu: a
	// provider may call back into the Manager (token) from code that holds
	// its own locks.
	subMu sync.Mutex
	// wake tells Run's flusher that pending has changes.
	wake chan struct{}

	mu   sync.Mutex
	subs map[int64]int64 // channel id → user id
	// pending: channels whose subscription changed since the provider in
	// use was told; the flusher applies m.subs to it. A provider's
	// Subscribe can cost a write and a goroutine per channel (Centrifugo),
	// ~50 µs: 100k of them made the engine's restore take 5 s at a cold
	// start, so callers only record what they want.
	pending      map[int64]struct{}
	cur          Provider // nil while none runs
	curOffer     Offer
	curNote      string
	since        time.Time
	blind        string // why nothing runs
	lastNeg      time.Time
	lastNegErr   string
	tokenExpires time.Time
	counters     map[string]*Counters
	stats        ManagerStats
}

// ManagerStats counts the Manager's own work.
type ManagerStats struct {
	Negotiations, NegotiationFailures int64
	TokenRenewals, TokenFailures      int64
	Refusals                          int64 // providers that refused kickmon
	Switches                          int64 // providers taken into use
}

// NewManager validates o.
func NewManager(o Options) (*Manager, error) {
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	if !slices.Contains(Modes, o.Mode) {
		return nil, fmt.Errorf("realtime: mode %q is not one of %s", o.Mode, strings.Join(Modes, ", "))
	}
	if o.Out == nil {
		return nil, errors.New("realtime: Options.Out is required")
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.Recheck <= 0 {
		o.Recheck = DefaultRecheck
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if n := o.Negotiator; n != nil && n.ClientID == "" {
		n.ClientID = newUUID() // before any concurrent use
	}
	return &Manager{o: o, log: log.With(logkeys.Component, "realtime"), subs: make(map[int64]int64),
		pending: make(map[int64]struct{}), wake: make(chan struct{}, 1), counters: make(map[string]*Counters)}, nil
}

// Subscribe watches Kick channel channelID for streamer userID on whichever
// provider runs, now and after every switch. It does not wait for the
// provider: Run's flusher tells it.
func (m *Manager) Subscribe(channelID, userID int64) {
	if channelID <= 0 {
		return
	}
	m.mu.Lock()
	m.subs[channelID] = userID
	m.changed(channelID)
	m.mu.Unlock()
}

// Unsubscribe stops watching channelID (without waiting, as Subscribe).
func (m *Manager) Unsubscribe(channelID int64) {
	m.mu.Lock()
	delete(m.subs, channelID)
	m.changed(channelID)
	m.mu.Unlock()
}

// changed queues channelID for the provider in use; m.mu is held. With no
// provider there is nothing to queue: the next one is given m.subs whole.
func (m *Manager) changed(channelID int64) {
	if m.cur == nil {
		return
	}
	m.pending[channelID] = struct{}{}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// flushLoop applies the queued changes to the provider in use until ctx
// ends.
func (m *Manager) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
			m.flush()
		}
	}
}

// flush tells the provider in use what changed since it was last told.
func (m *Manager) flush() {
	type change struct {
		channel, user int64
		on            bool
	}
	m.subMu.Lock()
	defer m.subMu.Unlock()
	m.mu.Lock()
	cur := m.cur
	changes := make([]change, 0, len(m.pending))
	for ch := range m.pending {
		uid, on := m.subs[ch]
		changes = append(changes, change{ch, uid, on})
	}
	clear(m.pending)
	m.mu.Unlock()
	if cur == nil {
		return // the next provider is given m.subs whole
	}
	for _, c := range changes {
		if c.on {
			cur.Subscribe(c.channel, c.user)
		} else {
			cur.Unsubscribe(c.channel)
		}
	}
}

// errRenegotiated ends a fallback provider when negotiation works again.
var errRenegotiated = errors.New("negotiation works again")

// Run negotiates and runs providers until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if m.o.Mode == ModeOff {
		<-ctx.Done()
		return nil
	}
	fctx, stopFlush := context.WithCancel(ctx)
	var flusher sync.WaitGroup
	flusher.Go(func() { m.flushLoop(fctx) })
	defer flusher.Wait()
	defer stopFlush()
	// One backoff for the whole feed: a provider that stayed up for
	// stableAfter starts it over.
	b := backoff.Backoff{Policy: backoff.Policy{Base: m.o.RetryBase, Max: m.o.RetryMax}, StableAfter: stableAfter}
	replaces := false
	for {
		offers, negErr := m.offers(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var reasons []string
		note := ""
		if negErr != nil {
			note = negErr.Error()
			reasons = append(reasons, note)
			m.coverage(ctx, m.defaultSource(), note)
		}
		renegotiated := false
		for _, o := range offers {
			started, err := m.serve(ctx, o, replaces || negErr != nil, note)
			replaces = true
			if ctx.Err() != nil {
				return nil
			}
			if !started.IsZero() {
				b.Succeeded(started)
			}
			if errors.Is(err, errRenegotiated) {
				renegotiated = true
				break
			}
			why := err.Error()
			if !o.Negotiated {
				why = o.Provider + " fallback: " + why
			}
			reasons = append(reasons, why)
			m.log.Warn("realtime provider failed", logkeys.Provider, o.Provider, logkeys.Err, why)
			m.coverage(ctx, SourceOf(o.Provider), why)
		}
		if renegotiated {
			b.Succeeded(time.Now())
			continue
		}
		if len(reasons) == 0 {
			reasons = append(reasons, "no realtime provider configured")
		}
		why := strings.Join(reasons, "; ")
		m.mu.Lock()
		m.blind = why
		m.mu.Unlock()
		delay := max(b.Failed(time.Now()), m.o.RetryBase/2)
		m.log.Warn("realtime blind; negotiating again", logkeys.Reason, why, logkeys.Backoff, delay)
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// defaultSource is the source of coverage reports before any provider ran.
func (m *Manager) defaultSource() kickmonv1.Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.curOffer.Provider != "" {
		return SourceOf(m.curOffer.Provider)
	}
	if m.o.Mode == ModePusher {
		return SourceOf(Pusher)
	}
	return SourceOf(Centrifugo)
}

// coverage reports every streamer with a channel id blind for reason.
func (m *Manager) coverage(ctx context.Context, src kickmonv1.Source, reason string) {
	select {
	case m.o.Out <- observation.Observation{Kind: observation.Coverage, Source: src, Blind: true, Reason: reason, ObservedAt: time.Now()}:
	case <-ctx.Done():
	}
}

// accepted lists the providers the mode allows, in kick.com's order.
func (m *Manager) accepted() []string {
	var out []string
	if m.o.PusherURL != "" && (m.o.Mode == ModeAuto || m.o.Mode == ModePusher) {
		out = append(out, Pusher)
	}
	if m.o.Mode == ModeAuto || m.o.Mode == ModeCentrifugo {
		out = append(out, Centrifugo)
	}
	return out
}

// offers negotiates, or gives the fallbacks with the negotiation's error.
// Centrifugo goes first (Kick's own choice since autumn 2026).
func (m *Manager) offers(ctx context.Context) ([]Offer, error) {
	accepted := m.accepted()
	if len(accepted) == 0 {
		return nil, nil
	}
	var negErr error
	if n := m.o.Negotiator; n != nil {
		offers, err := n.Offers(ctx, accepted)
		var out []Offer
		if err == nil {
			var rejected string
			if out, rejected = m.usable(offers, accepted); len(out) == 0 {
				err = &NegotiationError{Op: "negotiation", Detail: cmpOr(rejected, "no accepted provider offered")}
			}
		}
		m.mu.Lock()
		m.lastNeg = time.Now()
		m.stats.Negotiations++
		m.lastNegErr = ""
		if err != nil {
			m.stats.NegotiationFailures++
			m.lastNegErr = err.Error()
		}
		m.mu.Unlock()
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		m.log.Warn("realtime negotiation failed; using the fallback URLs", logkeys.Err, err)
		negErr = err
	}
	var out []Offer
	for _, p := range accepted {
		switch {
		case p == Centrifugo && m.o.CentrifugoURL != "":
			out = append(out, Offer{Provider: Centrifugo, URL: m.o.CentrifugoURL})
		case p == Pusher:
			out = append(out, Offer{Provider: Pusher, URL: m.o.PusherURL})
		}
	}
	slices.SortStableFunc(out, func(a, b Offer) int { return order(a.Provider) - order(b.Provider) })
	if negErr == nil && len(out) == 0 {
		negErr = errors.New("no realtime provider configured")
	}
	return out, negErr
}

func order(provider string) int {
	if provider == Centrifugo {
		return 0
	}
	return 1
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// usable completes the negotiated offers kickmon can take, Centrifugo
// first; rejected says why the others were dropped.
func (m *Manager) usable(offers []Offer, accepted []string) ([]Offer, string) {
	var out []Offer
	var rejected []string
	for _, o := range offers {
		if !slices.Contains(accepted, o.Provider) {
			continue
		}
		if o.Provider == Pusher {
			u, err := PusherURL(m.o.PusherURL, o.AppKey, o.Cluster)
			if err != nil {
				rejected = append(rejected, err.Error())
				continue
			}
			o.URL = u
		}
		if err := CheckURL(o.URL, m.o.AllowInsecure); err != nil {
			rejected = append(rejected, "negotiated "+o.Provider+" URL "+err.Error())
			continue
		}
		out = append(out, o)
	}
	slices.SortStableFunc(out, func(a, b Offer) int { return order(a.Provider) - order(b.Provider) })
	return out, strings.Join(rejected, "; ")
}

// serve runs one provider until it fails, ctx ends, or (for a fallback)
// negotiation works again. It returns when the provider started (zero when
// it could not be built).
func (m *Manager) serve(ctx context.Context, o Offer, replaces bool, note string) (time.Time, error) {
	f := m.o.New[o.Provider]
	if f == nil {
		return time.Time{}, fmt.Errorf("%s: not available", o.Provider)
	}
	m.mu.Lock()
	c := m.counters[o.Provider]
	if c == nil {
		c = new(Counters)
		m.counters[o.Provider] = c
	}
	m.mu.Unlock()
	p, err := f(Start{Offer: o, Counters: c, Reconcile: replaces, Note: note, Token: m.token})
	if err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	m.subMu.Lock()
	m.mu.Lock()
	m.cur, m.curOffer, m.curNote, m.since, m.blind = p, o, note, start, ""
	m.stats.Switches++
	subs := maps.Clone(m.subs)
	clear(m.pending) // in subs
	m.mu.Unlock()
	for ch, uid := range subs {
		p.Subscribe(ch, uid)
	}
	m.subMu.Unlock()
	m.log.Info("realtime provider in use", logkeys.Provider, o.Provider, logkeys.URL, redact(o.URL), logkeys.Negotiated, o.Negotiated)

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }() // owned here: serve waits for done
	stop := func() {
		m.mu.Lock()
		m.cur = nil
		m.mu.Unlock()
	}
	var recheck <-chan time.Time
	var t *time.Timer
	if !o.Negotiated && m.o.Negotiator != nil {
		t = time.NewTimer(m.o.Recheck)
		defer t.Stop()
		recheck = t.C
	}
	for {
		select {
		case err := <-done:
			stop()
			if err == nil {
				err = fmt.Errorf("%s stopped", o.Provider)
			}
			var re *RefusedError
			if errors.As(err, &re) {
				m.mu.Lock()
				m.stats.Refusals++
				m.mu.Unlock()
			}
			return start, err
		case <-recheck:
			offers, err := m.offers(ctx)
			if err == nil && len(offers) > 0 {
				m.log.Info("realtime negotiation works again; leaving the fallback", logkeys.Provider, o.Provider)
				cancel()
				<-done
				stop()
				return start, errRenegotiated
			}
			t.Reset(m.o.Recheck)
		}
	}
}

// token fetches a Centrifugo token for a provider, counting it.
func (m *Manager) token(ctx context.Context) (string, error) {
	n := m.o.Negotiator
	if n == nil {
		return "", fmt.Errorf("%w: KICK_WEB_URL is empty, so there is no token endpoint", ErrTokenRefused)
	}
	tok, exp, err := n.Token(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.stats.TokenFailures++
		var ne *NegotiationError
		if errors.As(err, &ne) && (ne.Status == 401 || ne.Status == 403) {
			return "", fmt.Errorf("%w: %v", ErrTokenRefused, err)
		}
		return "", err
	}
	m.stats.TokenRenewals++
	m.tokenExpires = exp
	return tok, nil
}

// redact drops a URL's query (Pusher's carries nothing secret, but a
// Centrifugo URL might carry a token).
func redact(u string) string {
	s, _, _ := strings.Cut(u, "?")
	return s
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Health of the realtime feed.
type Health string

// Health values.
const (
	HealthOK       Health = "ok"
	HealthDegraded Health = "degraded"
	HealthDown     Health = "down"
	HealthDisabled Health = "disabled"
)

// Status describes the realtime feed for the status API and metrics.
type Status struct {
	Mode string
	// Provider is the provider in use; "" when none works.
	Provider string
	// Running is the provider running (it may not work yet).
	Running     string
	Since       time.Time
	Health      Health
	BlindReason string
	Negotiated  bool
	// LastNegotiation and LastNegotiationError describe the last try.
	LastNegotiation      time.Time
	LastNegotiationError string
	TokenExpiresAt       time.Time
	Sockets              []SocketStatus
	// Channels is how many channels are confirmed subscribed; Wanted how
	// many are asked for.
	Channels, Wanted int
	Stats            ManagerStats
	// Providers are the counters of each provider that ever ran.
	Providers map[string]Stats
}

// Status describes the feed now.
func (m *Manager) Status() Status {
	m.mu.Lock()
	st := Status{
		Mode: m.o.Mode, Since: m.since, LastNegotiation: m.lastNeg, LastNegotiationError: m.lastNegErr,
		TokenExpiresAt: m.tokenExpires, Wanted: len(m.subs), Stats: m.stats, Providers: make(map[string]Stats),
	}
	for name, c := range m.counters {
		st.Providers[name] = c.Stats()
	}
	cur, offer, note, blind := m.cur, m.curOffer, m.curNote, m.blind
	m.mu.Unlock()
	if m.o.Mode == ModeOff {
		st.Health, st.BlindReason = HealthDisabled, "KICK_REALTIME=off"
		return st
	}
	if cur == nil {
		st.Health, st.BlindReason = HealthDown, cmpOr(blind, "negotiating")
		return st
	}
	st.Running, st.Negotiated = offer.Provider, offer.Negotiated
	if offer.Provider != Centrifugo {
		st.TokenExpiresAt = time.Time{}
	}
	st.Sockets = cur.Sockets()
	up, lastErr := 0, ""
	for _, s := range st.Sockets {
		if s.State == StateConnected {
			up++
			st.Channels += s.Channels
		}
		if s.LastError != "" {
			lastErr = s.LastError
		}
	}
	switch n := len(st.Sockets); {
	case n == 0 || up == n:
		st.Health = HealthOK
	case up == 0:
		st.Health = HealthDown
		st.BlindReason = offer.Provider + " " + ReasonSocketDown
		if lastErr != "" {
			st.BlindReason += ": " + lastErr
		}
		if note != "" {
			st.BlindReason = note + "; " + offer.Provider + " fallback: " + strings.TrimPrefix(st.BlindReason, offer.Provider+" ")
		}
	default:
		st.Health = HealthDegraded
	}
	if st.Health != HealthDown {
		st.Provider = offer.Provider
	}
	return st
}

// Subscribed returns the subscribed channels and their users.
func (m *Manager) Subscribed() map[int64]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.subs)
}
