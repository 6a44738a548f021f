// Package poller keeps every watched streamer's state fresh through Kick's
// official API, the ground truth of kickmon. It asks GET /public/v1/channels
// for up to 50 streamers per request, spreading each round of requests over
// the poll interval so that every streamer is refreshed at least once per
// interval; out-of-turn checks (CheckNow) go first into the next request.
// For live streamers whose channel id is unknown it asks the deprecated v1
// livestreams endpoint, the only official source of channel ids.
//
// Every request waits for the kickrest client's request budget. Failures
// back off by class (proto/backoff): 5xx and network errors at most the
// poll interval (at least 30 s), so the poller is back soon after Kick;
// 429 briefly, while the client lowers its request rate; 403 and
// Cloudflare pages long. Each endpoint has a circuit breaker, open no
// longer than the poll interval (at most 30 s). When the API cannot be reached for longer
// than BlindAfter, the poller reports itself blind with a Coverage
// observation, and reports again when it sees again.
//
// The package also resolves slugs to broadcaster user ids (Resolver).
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/sony/gobreaker/v2"
)

// Defaults and limits.
const (
	DefaultInterval = 60 * time.Second
	// MinInterval is the shortest poll interval (KICKMON_POLL_INTERVAL; below
	// 10 s is for tests and demos).
	MinInterval = time.Second
	// DefaultBreakerFailures consecutive failures open an endpoint's breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerTimeout is how long an open breaker waits at most; it
	// waits one poll interval when that is shorter.
	DefaultBreakerTimeout = 30 * time.Second

	batchSize = kickrest.MaxChannelIDs
)

// Endpoint names, as used in Status.Breakers.
const (
	EndpointChannels    = "channels"
	EndpointLivestreams = "livestreams"
)

// Options configure a Poller.
type Options struct {
	// Interval: every watched streamer is refreshed at least this often
	// (default DefaultInterval, at least MinInterval).
	Interval time.Duration
	// Out receives every observation. The poller blocks on it (backpressure).
	Out    chan<- observation.Observation
	Logger *slog.Logger
	// BackoffBase and BackoffMax, when set, replace the policy of every
	// failure class (tests); by default the wait follows the class
	// (backoff.For with the poll interval).
	BackoffBase, BackoffMax time.Duration
	// BreakerFailures consecutive failures open an endpoint's circuit
	// breaker for BreakerTimeout (defaults DefaultBreakerFailures, and
	// the shorter of DefaultBreakerTimeout and Interval).
	BreakerFailures uint32
	BreakerTimeout  time.Duration
	// BlindAfter: when no request has succeeded for this long, the poller
	// reports itself blind (default 2×Interval).
	BlindAfter time.Duration
	// Budget is the request budget per minute (KICKMON_API_BUDGET). Half
	// of what the routine rounds leave of it refreshes streamers without a
	// channel id (no realtime coverage) more often, so that sessions
	// shorter than the poll interval are seen: each such streamer every
	// UncoveredEvery, or less often when that half cannot pay for it
	// (Status.UncoveredEvery). 0: no extra refreshes.
	Budget int
	// UncoveredEvery is the shortest period of those extra refreshes
	// (default Interval/3). A session shorter than it, of a streamer never
	// seen live, can be missed: this is the floor of what polling sees.
	UncoveredEvery time.Duration
	// InFlight is how many requests may be in flight at once (default 1).
	// One at a time, a round of 100k streamers (2000 requests a minute)
	// is bound by the requests' latency: at 100–200 ms each it cannot fit
	// a minute.
	InFlight int

	// minInterval lets in-package tests go below MinInterval.
	minInterval time.Duration
	// onBatch, if set, sees the ids of every channels request before it is
	// sent, with the number of the round it belongs to.
	onBatch func(round int, ids []int64)
}

// Poller polls the official API. Create it with New, run it with Run.
type Poller struct {
	c        *kickrest.Client
	o        Options
	log      *slog.Logger
	wake     chan struct{}
	channels *gobreaker.CircuitBreaker[[]kickrest.Channel]
	lives    *gobreaker.CircuitBreaker[[]kickrest.Livestream]

	mu      sync.Mutex
	running bool
	watched map[int64]*entry
	pending []int64 // out-of-turn checks, oldest first
	queued  map[int64]bool
	st      state
	open    map[string]time.Time // breaker name → when it may half-open
	learned int                  // channel ids learned since the round started
	round   round
	// covered counts watched streamers by the bucket of their lastOK
	// (coverBucket wide), so that Status counts the covered ones without
	// walking every entry.
	covered map[int64]int
	// Extra refreshes of streamers without a channel id (Options.Budget).
	uncovered    int       // watched streamers without a channel id
	extra        []int64   // candidates, least recently asked first
	extraStale   bool      // a streamer without a channel id was added since extra was built
	extraAt      time.Time // when the next extra request may go (the spare budget's pace)
	extraBuildAt time.Time // when extra may be built again
}

type entry struct {
	channelID int64
	lastOK    time.Time // last time a response covered this streamer
	askedAt   time.Time // last time a request asked for it
	toldGone  bool      // told the monitor why it has no channel id (livestreams gone)
}

// round is one pass over every watched streamer: each is asked for once,
// in full batches spread over the interval. Streamers watched during a
// round join it (fresh), ahead of the others: they were never asked.
type round struct {
	n          int
	start, end time.Time
	fresh      []int64 // streamers watched since the round started, not yet sent
	queue      []int64 // routine ids not yet sent
	total      int
}

// Reasons a request is sent, or a streamer is refreshed (Status.Requests,
// Status.Refreshes): the round is the base cost, ⌈N/50⌉ requests per
// interval; the others are extra requests spent on purpose.
const (
	ReasonRound       = "round"       // the routine refresh of every streamer once per interval
	ReasonCheck       = "check"       // out-of-turn checks (CheckNow)
	ReasonUncovered   = "uncovered"   // extra refreshes of streamers without realtime coverage
	ReasonLivestreams = "livestreams" // channel ids of live streamers (v1 livestreams)
)

type reason int

const (
	byRound reason = iota
	byCheck
	byUncovered
	byLivestreams
	nReasons
)

var reasonNames = [nReasons]string{ReasonRound, ReasonCheck, ReasonUncovered, ReasonLivestreams}

// state is what Status reports, guarded by mu.
type state struct {
	lastSuccess, lastError time.Time
	lastErr                error
	failures               int // consecutive
	backoffUntil           time.Time
	rateLimited            int64
	requests               int64
	blind                  bool
	blindReason            string
	rounds                 int
	// By reason: requests sent, and streamers asked for.
	byReason, refreshes [nReasons]int64
	// livestreamsGone is the status (404, 410) with which the deprecated
	// v1 livestreams endpoint answered; it is not asked again.
	livestreamsGone int
}

// New returns a Poller over client.
func New(client *kickrest.Client, o Options) (*Poller, error) {
	if client == nil {
		return nil, errors.New("poller: nil client")
	}
	if o.Out == nil {
		return nil, errors.New("poller: nil Out channel")
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	minIv := MinInterval
	if o.minInterval > 0 {
		minIv = o.minInterval
	}
	if o.Interval < minIv {
		return nil, fmt.Errorf("poller: interval %v is below the minimum %v", o.Interval, minIv)
	}
	if o.BackoffBase > 0 || o.BackoffMax > 0 {
		o.BackoffMax = max(o.BackoffMax, o.BackoffBase)
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerTimeout <= 0 {
		o.BreakerTimeout = min(DefaultBreakerTimeout, o.Interval)
	}
	if o.BlindAfter <= 0 {
		o.BlindAfter = 2 * o.Interval
	}
	if o.InFlight <= 0 {
		o.InFlight = 1
	}
	if o.UncoveredEvery <= 0 {
		o.UncoveredEvery = o.Interval / 3
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Poller{
		c:       client,
		o:       o,
		log:     log.With(logkeys.Component, "poller"),
		wake:    make(chan struct{}, 1),
		watched: make(map[int64]*entry),
		queued:  make(map[int64]bool),
		open:    make(map[string]time.Time),
		covered: make(map[int64]int),
	}
	p.channels = gobreaker.NewCircuitBreaker[[]kickrest.Channel](p.breakerSettings(EndpointChannels))
	p.lives = gobreaker.NewCircuitBreaker[[]kickrest.Livestream](p.breakerSettings(EndpointLivestreams))
	return p, nil
}

func (p *Poller) breakerSettings(name string) gobreaker.Settings {
	return gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     p.o.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= p.o.BreakerFailures },
		// A refused request (400) or a cancelled one says nothing about
		// Kick's health.
		IsSuccessful: func(err error) bool {
			return err == nil || kickrest.KindOf(err) == kickrest.BadRequest || errors.Is(err, context.Canceled)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			p.log.Warn("circuit breaker "+to.String(), logkeys.Endpoint, name)
			p.mu.Lock()
			defer p.mu.Unlock()
			if to == gobreaker.StateOpen {
				p.open[name] = time.Now().Add(p.o.BreakerTimeout)
			} else {
				delete(p.open, name)
			}
		},
	}
}

// Watch adds a streamer, or updates its channel id (0 keeps what is known).
// A new streamer joins the current round, ahead of the streamers already
// asked for, so a bulk add is refreshed within the round it was made in.
func (p *Poller) Watch(userID, channelID int64) {
	if userID <= 0 {
		return
	}
	p.mu.Lock()
	e, ok := p.watched[userID]
	if !ok {
		e = &entry{}
		p.watched[userID] = e
		p.uncovered++
		if !p.round.start.IsZero() {
			p.round.fresh = append(p.round.fresh, userID)
			p.round.total++
		}
	}
	p.setChannelID(e, channelID)
	if !ok && e.channelID == 0 {
		p.extraStale = true
	}
	p.mu.Unlock()
	if !ok {
		p.poke()
	}
}

// setChannelID records a channel id (0 keeps what is known). Caller holds mu.
func (p *Poller) setChannelID(e *entry, channelID int64) {
	if channelID > 0 {
		if e.channelID == 0 {
			p.uncovered--
		}
		e.channelID = channelID
	}
}

// Unwatch removes a streamer.
func (p *Poller) Unwatch(userID int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.watched[userID]
	if !ok {
		return
	}
	if e.channelID == 0 {
		p.uncovered--
	}
	p.setCovered(e, time.Time{})
	delete(p.watched, userID)
}

// coverBucket is the width of the buckets that count covered streamers.
func (p *Poller) coverBucket() time.Duration { return max(p.o.BlindAfter/64, time.Millisecond) }

// setCovered records when a response last covered e, keeping the bucket
// counts of Status. Caller holds mu.
func (p *Poller) setCovered(e *entry, t time.Time) {
	w := int64(p.coverBucket())
	if !e.lastOK.IsZero() {
		k := e.lastOK.UnixNano() / w
		if p.covered[k]--; p.covered[k] <= 0 {
			delete(p.covered, k)
		}
	}
	e.lastOK = t
	if !t.IsZero() {
		p.covered[t.UnixNano()/w]++
	}
}

// coveredSince counts the watched streamers covered at or after t (those
// of the bucket holding t included). Caller holds mu.
func (p *Poller) coveredSince(t time.Time) int {
	from, n := t.UnixNano()/int64(p.coverBucket()), 0
	for k, c := range p.covered {
		if k >= from {
			n += c
		}
	}
	return n
}

// poke wakes Run without blocking.
func (p *Poller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// CheckNow asks for an out-of-turn refresh of watched streamers. It never
// blocks: the ids go first into the next requests, coalesced with each
// other and with the routine refresh. Unwatched ids are ignored.
func (p *Poller) CheckNow(userIDs ...int64) {
	p.mu.Lock()
	added := false
	for _, id := range userIDs {
		if _, ok := p.watched[id]; ok && !p.queued[id] {
			p.queued[id] = true
			p.pending = append(p.pending, id)
			added = true
		}
	}
	p.mu.Unlock()
	if added {
		p.poke()
	}
}

var _ observation.Checker = (*Poller)(nil)

// Run polls until ctx is done; it returns nil then. It may be called once.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("poller: already running")
	}
	p.running = true
	p.st.lastSuccess = time.Now() // blindness counts from the start
	p.mu.Unlock()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Requests in flight hold a slot. The loop takes one before it decides,
	// so with one slot it decides after the previous answer (and its
	// backoff), as a sequential poller would.
	slots := make(chan struct{}, p.o.InFlight)
	var polls sync.WaitGroup
	defer polls.Wait()
	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		now := time.Now()
		if err := p.checkBlind(ctx, now); err != nil {
			<-slots
			return nil
		}
		wait := p.blindDeadline(now)
		if until := p.waitUntil(); now.Before(until) {
			wait = min(wait, until.Sub(now))
		} else if round, why, ids, next := p.nextBatch(now); len(ids) > 0 {
			polls.Go(func() {
				defer func() { <-slots }()
				p.poll(ctx, round, why, ids)
			})
			continue
		} else {
			wait = min(wait, next.Sub(now))
		}
		<-slots
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-p.wake:
		}
	}
}

// waitUntil is when the next request may go: after the backoff, and after
// the channels breaker may half-open.
func (p *Poller) waitUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.st.backoffUntil
	if o := p.open[EndpointChannels]; o.After(t) {
		t = o
	}
	return t
}

// nextBatch returns the ids of the request to send now and why (pending
// checks first, filled with routine ids; else routine ids that are due;
// else an extra refresh of streamers without a channel id), or when to
// look again.
func (p *Poller) nextBatch(now time.Time) (int, reason, []int64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.round
	if r.start.IsZero() || !now.Before(r.end) {
		p.startRound(now)
	}
	slots := max(1, (r.total+batchSize-1)/batchSize)
	slot := p.o.Interval / time.Duration(slots)
	left := len(r.fresh) + len(r.queue)
	sent := r.total - left
	due := min(r.total, batchSize*(int(now.Sub(r.start)/slot)+1))

	why := byRound
	var ids []int64
	in := make(map[int64]bool)
	for len(p.pending) > 0 && len(ids) < batchSize {
		id := p.pending[0]
		p.pending = p.pending[1:]
		delete(p.queued, id)
		if _, ok := p.watched[id]; ok && !in[id] {
			in[id] = true
			ids = append(ids, id)
		}
	}
	if len(p.pending) == 0 {
		p.pending = nil // let the backing array go
	}
	checks := len(ids)
	if checks > 0 {
		why = byCheck
	}
	if checks > 0 || due > sent {
		for _, q := range []*[]int64{&r.fresh, &r.queue} {
			for len(*q) > 0 && len(ids) < batchSize {
				id := (*q)[0]
				*q = (*q)[1:]
				if _, ok := p.watched[id]; !ok || in[id] {
					continue // gone, or already in as a check
				}
				in[id] = true
				ids = append(ids, id)
			}
		}
	}
	routine := len(ids) - checks
	next := r.end
	if left := len(r.fresh) + len(r.queue); left > 0 {
		next = r.start.Add(slot * time.Duration((r.total-left)/batchSize))
	}
	if len(ids) == 0 {
		var at time.Time
		if ids, at = p.extraBatch(now); len(ids) > 0 {
			why = byUncovered
		} else if !at.IsZero() && at.Before(next) {
			next = at
		}
	}
	for _, id := range ids {
		p.watched[id].askedAt = now
	}
	p.st.refreshes[why] += int64(len(ids) - routine)
	p.st.refreshes[byRound] += int64(routine)
	return r.n, why, ids, next
}

// uncoveredEvery is how often each streamer without a channel id is
// refreshed: Options.UncoveredEvery, or as often as half of what the
// rounds leave of the budget pays for; 0 when it pays for nothing.
// Caller holds mu.
func (p *Poller) uncoveredEvery() time.Duration {
	if p.o.Budget <= 0 || p.uncovered == 0 {
		return 0
	}
	perMinute := int(time.Minute / p.o.Interval)
	spare := p.o.Budget/2 - (len(p.watched)+batchSize-1)/batchSize*max(1, perMinute)
	if spare <= 0 {
		return 0
	}
	batches := (p.uncovered + batchSize - 1) / batchSize
	return max(p.o.UncoveredEvery, time.Minute*time.Duration(batches)/time.Duration(spare))
}

// extraBatch returns up to a batch of streamers without a channel id that
// are due for an extra refresh (not asked for within uncoveredEvery), when
// the budget has room, least recently asked first; or when to look again
// (zero: never, until something changes). Caller holds mu.
func (p *Poller) extraBatch(now time.Time) ([]int64, time.Time) {
	every := p.uncoveredEvery()
	if every == 0 {
		p.extra = nil
		return nil, time.Time{}
	}
	if now.Before(p.extraAt) {
		return nil, p.extraAt
	}
	if (len(p.extra) == 0 && !now.Before(p.extraBuildAt)) || p.extraStale {
		// Candidates: those due within half a period. The list is built
		// again when it is spent, at the latest half a period later, so
		// a streamer is a candidate by the time it is due.
		p.extra = p.extra[:0]
		for id, e := range p.watched {
			if e.channelID == 0 && now.Sub(e.askedAt) >= every/2 {
				p.extra = append(p.extra, id)
			}
		}
		slices.SortFunc(p.extra, func(a, b int64) int { return p.watched[a].askedAt.Compare(p.watched[b].askedAt) })
		p.extraStale = false
		p.extraBuildAt = now.Add(every / 8) // a bound on walking every entry
	}
	var ids []int64
	for len(p.extra) > 0 && len(ids) < batchSize {
		e, ok := p.watched[p.extra[0]]
		if !ok || e.channelID != 0 || now.Sub(e.askedAt) < every/2 {
			p.extra = p.extra[1:] // gone, covered now, or asked for since: see it in the next list
			continue
		}
		if len(ids) == 0 && now.Sub(e.askedAt) < every {
			return nil, e.askedAt.Add(every) // the first is not due yet
		}
		// Once the first is due, the batch is filled with the next ones a
		// little early: requests stay full, and each streamer's period
		// stays about every.
		ids = append(ids, p.extra[0])
		p.extra = p.extra[1:]
	}
	if len(p.extra) == 0 {
		p.extra = nil
	}
	if len(ids) > 0 {
		// Paced by half the spare budget only: a backlog (a bulk add, a
		// cold start) goes as fast as that and the requests in flight
		// allow, after the rounds and checks. Spreading it by what is left
		// held the last due streamers back by up to half a period.
		perMinute := int(time.Minute / p.o.Interval)
		spare := p.o.Budget/2 - (len(p.watched)+batchSize-1)/batchSize*max(1, perMinute)
		p.extraAt = now.Add(time.Minute / time.Duration(max(1, spare)))
		return ids, time.Time{}
	}
	return nil, p.extraBuildAt
}

// startRound queues every watched streamer, least recently refreshed first.
func (p *Poller) startRound(now time.Time) {
	if p.learned > 0 {
		p.log.Info("learned channel ids in the last round", logkeys.Count, p.learned)
		p.learned = 0
	}
	ids := make([]int64, 0, len(p.watched))
	for id := range p.watched {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int64) int {
		if c := p.watched[a].lastOK.Compare(p.watched[b].lastOK); c != 0 {
			return c
		}
		return int(min(max(a-b, -1), 1))
	})
	p.round = round{n: p.round.n + 1, start: now, end: now.Add(p.o.Interval), queue: ids, total: len(ids)}
	p.st.rounds = p.round.n
}

// requeue puts the ids of a failed request back: they go first next time.
func (p *Poller) requeue(ids []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var back []int64
	for _, id := range ids {
		if !p.queued[id] {
			p.queued[id] = true
			back = append(back, id)
		}
	}
	p.pending = append(back, p.pending...)
}

// poll sends one channels request and emits what it learns.
func (p *Poller) poll(ctx context.Context, round int, why reason, ids []int64) {
	if p.o.onBatch != nil {
		p.o.onBatch(round, slices.Clone(ids))
	}
	p.count(why)
	// The answer is at least as fresh as the question: stamp observations
	// with the time of asking, so an answer that was in flight while push
	// reported a change is not taken for newer than that report.
	asked := time.Now()
	chs, err := p.channels.Execute(func() ([]kickrest.Channel, error) { return p.c.Channels(ctx, ids) })
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			// The breaker is still open: not a new answer from Kick, so the
			// last error (what opened it) stays; look again shortly.
			p.mu.Lock()
			p.st.backoffUntil = time.Now().Add(10 * time.Millisecond)
			p.mu.Unlock()
			p.requeue(ids)
			return
		}
		p.failed(EndpointChannels, err, len(ids))
		if kickrest.KindOf(err) != kickrest.BadRequest {
			p.requeue(ids) // a 400 would fail again; the next round retries them
		}
		return
	}
	now := time.Now()
	p.succeeded()
	if err := p.checkBlind(ctx, now); err != nil { // "sees again" before what it sees
		return
	}

	// Learn channel ids of live streamers from the v1 livestreams endpoint.
	var unknown []int64
	p.mu.Lock()
	for _, ch := range chs {
		if e, ok := p.watched[ch.BroadcasterUserID]; ok {
			p.setCovered(e, now)
			if ch.Live && e.channelID == 0 {
				unknown = append(unknown, ch.BroadcasterUserID)
			}
		}
	}
	for _, id := range ids { // asked for but absent (unknown to Kick): do not starve the round
		if e, ok := p.watched[id]; ok && e.lastOK.Before(now) {
			p.setCovered(e, now)
		}
	}
	p.mu.Unlock()
	if len(unknown) > 0 {
		p.learnChannelIDs(ctx, unknown)
	}
	if !p.tellGone(ctx) {
		return
	}

	p.mu.Lock()
	obs := make([]observation.Observation, 0, len(chs))
	for _, ch := range chs {
		var cid int64
		if e, ok := p.watched[ch.BroadcasterUserID]; ok {
			cid = e.channelID
		}
		obs = append(obs, Observe(ch, cid, asked))
	}
	p.mu.Unlock()
	for _, o := range obs {
		if !p.emit(ctx, o) {
			return
		}
	}
}

// learnChannelIDs asks the v1 livestreams endpoint for up to 50 live
// streamers and records their channel ids. Failures are logged; the status
// observations go out without channel ids.
func (p *Poller) learnChannelIDs(ctx context.Context, ids []int64) {
	p.mu.Lock()
	blocked := time.Now().Before(p.open[EndpointLivestreams]) || p.st.livestreamsGone != 0
	p.mu.Unlock()
	if blocked {
		return
	}
	p.count(byLivestreams)
	ls, err := p.lives.Execute(func() ([]kickrest.Livestream, error) { return p.c.Livestreams(ctx, ids) })
	var ke *kickrest.Error
	if errors.As(err, &ke) && (ke.Status == http.StatusNotFound || ke.Status == http.StatusGone) {
		p.mu.Lock()
		if p.st.livestreamsGone == 0 {
			p.log.Warn("the deprecated livestreams endpoint is gone; channel ids now come only from --channel-id and live sources",
				logkeys.Endpoint, EndpointLivestreams, logkeys.Status, ke.Status)
		}
		p.st.livestreamsGone = ke.Status
		p.mu.Unlock()
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("cannot learn channel ids", logkeys.Endpoint, EndpointLivestreams, logkeys.Count, len(ids), logkeys.Err, err)
			if kickrest.KindOf(err) == kickrest.RateLimited {
				p.failed(EndpointLivestreams, err, len(ids)) // the limit is the app's: slow down
			}
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range ls {
		if e, ok := p.watched[l.BroadcasterUserID]; ok && l.ChannelID > 0 && e.channelID == 0 {
			p.setChannelID(e, l.ChannelID)
			p.learned++
			// One info line per round says how many (startRound): at 100k
			// streamers a line per id was 30k lines.
			p.log.Debug("learned channel id", logkeys.UserID, l.BroadcasterUserID, logkeys.ChannelID, l.ChannelID)
		}
	}
}

// ReasonLivestreamsGone is the realtime coverage reason of a streamer
// without a channel id once the livestreams endpoint answered 404 or 410;
// the status follows in parentheses.
const ReasonLivestreamsGone = "no channel id: livestreams endpoint gone"

// tellGone reports, once per streamer, why the watched streamers without a
// channel id will not get one from the API; false when ctx ended.
func (p *Poller) tellGone(ctx context.Context) bool {
	p.mu.Lock()
	gone := p.st.livestreamsGone
	var users []int64
	if gone != 0 {
		for id, e := range p.watched {
			if e.channelID == 0 && !e.toldGone {
				e.toldGone = true
				users = append(users, id)
			}
		}
	}
	p.mu.Unlock()
	if len(users) == 0 {
		return true
	}
	slices.Sort(users)
	return p.emit(ctx, observation.Observation{Kind: observation.Coverage, Source: kickmonv1.Source_SOURCE_PUSHER, UserIDs: users,
		Blind: true, Reason: fmt.Sprintf("%s (%d)", ReasonLivestreamsGone, gone), ObservedAt: time.Now()})
}

func (p *Poller) count(why reason) {
	p.mu.Lock()
	p.st.requests++
	p.st.byReason[why]++
	p.mu.Unlock()
}

func (p *Poller) emit(ctx context.Context, o observation.Observation) bool {
	select {
	case p.o.Out <- o:
		return true
	case <-ctx.Done():
		return false
	}
}

// succeeded records a successful channels request.
func (p *Poller) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st.failures > 0 {
		p.log.Info("Kick API reachable again", logkeys.Count, p.st.failures)
	}
	p.st.lastSuccess = time.Now()
	p.st.failures = 0
	p.st.backoffUntil = time.Time{}
}

// failed records a failure and sets the backoff by the failure's class,
// never shorter than the server's Retry-After.
func (p *Poller) failed(endpoint string, err error, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.st.lastErr, p.st.lastError = err, now
	kind := kickrest.KindOf(err)
	if kind == kickrest.RateLimited {
		p.st.rateLimited++
	}
	if kind == kickrest.BadRequest {
		p.log.Error("Kick refused a request", logkeys.Endpoint, endpoint, logkeys.Batch, n, logkeys.Err, err)
		return
	}
	p.st.failures++
	d := p.policy(classOf(kind)).Wait(p.st.failures - 1)
	var ke *kickrest.Error
	if errors.As(err, &ke) && ke.RetryAfter > d {
		d = ke.RetryAfter
	}
	p.st.backoffUntil = now.Add(d)
	p.log.Warn("Kick API request failed", logkeys.Endpoint, endpoint, logkeys.ErrKind, cause(err),
		logkeys.Batch, n, logkeys.Backoff, d, logkeys.Count, p.st.failures, logkeys.Err, err)
}

// policy is the backoff after a failure of class c.
func (p *Poller) policy(c backoff.Class) backoff.Policy {
	if p.o.BackoffMax > 0 {
		return backoff.Policy{Base: p.o.BackoffBase, Max: p.o.BackoffMax}
	}
	return backoff.For(c, p.o.Interval)
}

// classOf is the backoff class of a kickrest error kind.
func classOf(k kickrest.Kind) backoff.Class {
	switch k {
	case kickrest.RateLimited:
		return backoff.RateLimited
	case kickrest.Blocked:
		return backoff.Blocked
	}
	return backoff.Transient
}

// cause names a failure for health and coverage: the kickrest kind, or
// "breaker-open".
func cause(err error) string {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return "breaker-open"
	}
	if k := kickrest.KindOf(err); k != 0 {
		return k.String()
	}
	return "error"
}

// blindDeadline is how long until the poller would turn blind (an hour
// when it already is, or has nothing to watch).
func (p *Poller) blindDeadline(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st.blind || len(p.watched) == 0 {
		return time.Hour
	}
	return p.st.lastSuccess.Add(p.o.BlindAfter).Sub(now) + time.Millisecond
}

// checkBlind emits a Coverage observation when the poller turns blind or
// sees again. It returns an error only when ctx ends.
func (p *Poller) checkBlind(ctx context.Context, now time.Time) error {
	p.mu.Lock()
	var o *observation.Observation
	switch blindNow := len(p.watched) > 0 && now.Sub(p.st.lastSuccess) > p.o.BlindAfter; {
	case blindNow && !p.st.blind:
		p.st.blind, p.st.blindReason = true, "no-response"
		if p.st.lastErr != nil {
			p.st.blindReason = cause(p.st.lastErr)
		}
		o = &observation.Observation{Kind: observation.Coverage, Source: kickmonv1.Source_SOURCE_POLL, Blind: true, Reason: p.st.blindReason, ObservedAt: now}
		p.log.Error("poller is blind: no answer from Kick's API", logkeys.Reason, p.st.blindReason, logkeys.Backoff, p.st.backoffUntil.Sub(now))
	case !blindNow && p.st.blind:
		p.st.blind, p.st.blindReason = false, ""
		o = &observation.Observation{Kind: observation.Coverage, Source: kickmonv1.Source_SOURCE_POLL, Blind: false, Reason: "recovered", ObservedAt: now}
		p.log.Info("poller sees again")
	}
	p.mu.Unlock()
	if o != nil && !p.emit(ctx, *o) {
		return ctx.Err()
	}
	return nil
}
