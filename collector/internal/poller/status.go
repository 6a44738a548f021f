package poller

import (
	"fmt"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/sony/gobreaker/v2"
)

// Health is the poller's health, for the status API.
type Health string

// Health values.
const (
	// HealthOK: the last request succeeded.
	HealthOK Health = "ok"
	// HealthDegraded: requests fail, but not for long yet.
	HealthDegraded Health = "degraded"
	// HealthRateLimited: Kick answers 429; the poller is backing off.
	HealthRateLimited Health = "rate-limited"
	// HealthBlocked: Kick's edge answers 403 or a Cloudflare page.
	HealthBlocked Health = "blocked"
	// HealthDown: another failure (network, 5xx, credentials) opened the
	// breaker, or nothing succeeded for BlindAfter.
	HealthDown Health = "down"
)

// Status is a snapshot of the poller for the status API and health checks.
type Status struct {
	Health Health
	// Streamers is how many streamers are watched; Covered how many of them
	// a response covered within the last BlindAfter (to within BlindAfter/64:
	// counted per bucket of time, so that Status does not walk every entry).
	Streamers, Covered int
	// Blind is true while the poller reports itself blind (BlindReason why).
	Blind       bool
	BlindReason string
	Interval    time.Duration
	Rounds      int // rounds started
	Pending     int // out-of-turn checks waiting

	LastSuccess time.Time
	LastError   time.Time
	// LastErrorText and LastErrorKind describe the last failure (kept after
	// recovery, for the operator).
	LastErrorText, LastErrorKind string
	ConsecutiveFailures          int
	BackoffUntil                 time.Time // zero when not backing off
	Requests                     int64     // requests the poller sent
	RateLimitedTotal             int64     // 429 answers so far
	// RequestsBy counts the requests sent by what made them go (ReasonRound,
	// ReasonCheck, ReasonUncovered, ReasonLivestreams); RefreshesBy the
	// streamers asked for by why (a check's request is filled with routine
	// ids: those count as round).
	RequestsBy, RefreshesBy map[string]int64
	// Uncovered is how many watched streamers have no channel id (no
	// realtime coverage); UncoveredEvery how often each is refreshed (0:
	// only by the rounds).
	Uncovered      int
	UncoveredEvery time.Duration

	// Breakers maps an endpoint to its breaker's state ("closed", "open",
	// "half-open").
	Breakers map[string]string
	// LivestreamsGone is the status (404, 410) with which the deprecated
	// livestreams endpoint answered; 0 while it works.
	LivestreamsGone int
	Budget          kickrest.BudgetStatus
	Token           kickrest.TokenStatus
}

// Status reports the poller's state.
func (p *Poller) Status() Status {
	now := time.Now()
	// Breaker states first: State may change state and call OnStateChange,
	// which takes p.mu.
	chState, lsState := p.channels.State(), p.lives.State()
	p.mu.Lock()
	s := Status{
		Streamers:           len(p.watched),
		Blind:               p.st.blind,
		BlindReason:         p.st.blindReason,
		Interval:            p.o.Interval,
		Rounds:              p.st.rounds,
		Pending:             len(p.pending),
		LastSuccess:         p.st.lastSuccess,
		LastError:           p.st.lastError,
		ConsecutiveFailures: p.st.failures,
		Requests:            p.st.requests,
		RateLimitedTotal:    p.st.rateLimited,
		Breakers: map[string]string{
			EndpointChannels:    chState.String(),
			EndpointLivestreams: lsState.String(),
		},
		LivestreamsGone: p.st.livestreamsGone,
		RequestsBy:      make(map[string]int64, nReasons),
		RefreshesBy:     make(map[string]int64, nReasons),
		Uncovered:       p.uncovered,
		UncoveredEvery:  p.uncoveredEvery(),
		Covered:         p.coveredSince(now.Add(-p.o.BlindAfter)),
	}
	for r, name := range reasonNames {
		s.RequestsBy[name] = p.st.byReason[r]
		if reason(r) != byLivestreams {
			s.RefreshesBy[name] = p.st.refreshes[r]
		}
	}
	if s.LivestreamsGone != 0 {
		s.Breakers[EndpointLivestreams] = fmt.Sprintf("gone(%d)", s.LivestreamsGone)
	}
	if now.Before(p.st.backoffUntil) {
		s.BackoffUntil = p.st.backoffUntil
	}
	if p.st.lastErr != nil {
		s.LastErrorText, s.LastErrorKind = p.st.lastErr.Error(), cause(p.st.lastErr)
	}
	p.mu.Unlock()

	switch {
	case s.ConsecutiveFailures == 0:
		s.Health = HealthOK
	case s.LastErrorKind == kickrest.Blocked.String():
		s.Health = HealthBlocked
	case s.LastErrorKind == kickrest.RateLimited.String():
		s.Health = HealthRateLimited
	case chState == gobreaker.StateOpen || s.Blind:
		s.Health = HealthDown
	default:
		s.Health = HealthDegraded
	}
	s.Budget = p.c.Budget()
	s.Token = p.c.TokenStatus()
	return s
}
