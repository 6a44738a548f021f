// Package engine is the collector's main loop: it owns the monitor (the
// per-streamer state machine), feeds it the sources' observations, commits
// the resulting events to the spool before anyone sees them (watchers wake
// on the spool's commits), and tells the sources what to watch. Operator
// requests from the gRPC API run inside the same loop, so the monitor needs
// no locks.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/monitor"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/rpc"
	"github.com/kickmon/kickmon/collector/internal/spool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
)

// Poller is what the engine needs of the official-API poller.
type Poller interface {
	observation.Checker
	Watch(userID, channelID int64)
	Unwatch(userID int64)
}

// Pusher is what the engine needs of the Pusher client.
type Pusher interface {
	Subscribe(channelID, userID int64)
	Unsubscribe(channelID int64)
}

// Resolver resolves slugs through the official API, one Resolution per
// slug in order; failures are per slug (poller.Resolver.Resolve is one).
type Resolver func(ctx context.Context, slugs []string) []poller.Resolution

// Options wire an Engine.
type Options struct {
	Monitor *monitor.Monitor
	Spool   *spool.Spool
	Poller  Poller
	Pusher  Pusher // nil when Pusher is off
	Resolve Resolver
	// Committed, if set, sees every committed batch of events (metrics).
	Committed func([]*kickmonv1.Event)
	// Quarantined, if set, sees every event dropped because it cannot be
	// encoded (metrics).
	Quarantined func(*kickmonv1.Event)
	Logger      *slog.Logger
	Now         func() time.Time
	// BatchMax bounds how many queued observations one spool commit takes.
	BatchMax int
	// In is where sources send observations (made by New when nil); the
	// app makes it first, because sources and engine need each other.
	In chan observation.Observation
}

// Engine is the collector's main loop.
type Engine struct {
	o     Options
	obs   chan observation.Observation
	calls chan func()
	// born and progress measure liveness on the monotonic clock (a wall
	// clock step must neither fake a stall nor hide one): progress is the
	// time since born of the loop's last turn.
	born     time.Time
	progress atomic.Int64
	total    atomic.Int64 // watched streamers, as of the loop's last turn
	live     atomic.Int64 // of which live
	running  atomic.Bool
	stopped  chan struct{} // closed when Run returns

	// fatal is a spool commit failure inside an operator call; Run stops
	// with it. Owned by the loop.
	fatal error

	// run names this run in ListStreamers' changes tokens: the monitor's
	// change count starts again at every start.
	run string
}

// New returns an Engine; Run starts it.
func New(o Options) *Engine {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 1024
	}
	if o.In == nil {
		o.In = make(chan observation.Observation, 8192)
	}
	return &Engine{o: o, obs: o.In, calls: make(chan func()), stopped: make(chan struct{}), born: time.Now(),
		run: ulid.Make().String()}
}

// Observations is where sources send what they see.
func (e *Engine) Observations() chan<- observation.Observation { return e.obs }

// ErrStopped answers calls made while the loop is not running.
var ErrStopped = fmt.Errorf("%w: kickcollector is shutting down", rpc.ErrUnavailable)

// Run restores the watch list from the spool, then runs the loop until ctx
// ends, committing what is still queued before it returns. A spool write
// failure stops it with an error: events that cannot be stored must not be
// published, and a restart reconciles through the API. An event protobuf
// cannot encode is quarantined instead (a restart would meet it again).
func (e *Engine) Run(ctx context.Context) error {
	streamers, err := e.o.Spool.Streamers()
	if err != nil {
		return fmt.Errorf("restore watch list: %w", err)
	}
	now := e.o.Now()
	r := e.o.Monitor.Restore(streamers, now)
	for _, w := range e.o.Monitor.Watched() {
		e.watch(w.UserID, w.ChannelID)
	}
	if err := e.apply(r); err != nil {
		return err
	}
	e.o.Logger.Info("watch list restored", logkeys.Count, len(streamers))
	e.storeCounts()
	e.turned()
	e.running.Store(true)
	defer close(e.stopped)
	defer e.running.Store(false)

	heartbeat := time.NewTicker(time.Second)
	defer heartbeat.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.resetTimer(timer)
		select {
		case <-ctx.Done():
			return e.drain()
		case o := <-e.obs:
			if err := e.observe(o); err != nil {
				return err
			}
		case f := <-e.calls:
			if f(); e.fatal != nil {
				return e.fatal
			}
		case <-timer.C:
			if err := e.apply(e.o.Monitor.Tick(e.o.Now())); err != nil {
				return err
			}
		case <-heartbeat.C:
		}
		e.storeCounts()
		e.turned()
	}
}

// turned records a turn of the loop, for Healthy.
func (e *Engine) turned() { e.progress.Store(int64(time.Since(e.born))) }

// drain commits what the sources queued before they stopped (the app stops
// them before the engine), so a clean shutdown loses no observation.
func (e *Engine) drain() error {
	for {
		select {
		case o := <-e.obs:
			if err := e.observe(o); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (e *Engine) resetTimer(t *time.Timer) {
	d := time.Hour
	if at, ok := e.o.Monitor.NextDeadline(); ok {
		d = max(at.Sub(e.o.Now()), 0)
	}
	t.Reset(d)
}

// observe feeds o and whatever else is queued (up to BatchMax) to the
// monitor, then commits all their events in one spool transaction.
func (e *Engine) observe(o observation.Observation) error {
	results := []monitor.Result{e.feed(o)}
	for len(results) < e.o.BatchMax {
		select {
		case o := <-e.obs:
			results = append(results, e.feed(o))
			continue
		default:
		}
		break
	}
	return e.apply(results...)
}

// feed gives one observation to the monitor. Every observation, from
// whichever source, is sanitized here (valid UTF-8, no NUL, capped
// lengths): the one place all of them pass through.
func (e *Engine) feed(o observation.Observation) monitor.Result {
	return e.o.Monitor.Observe(o.Sanitized())
}

// apply commits the results' events, then acts on them.
func (e *Engine) apply(results ...monitor.Result) error {
	var events []*kickmonv1.Event
	var check []int64
	for _, r := range results {
		events = append(events, r.Events...)
		check = append(check, r.Check...)
		for _, ch := range r.Channels {
			e.watch(ch.UserID, ch.ChannelID)
		}
	}
	if len(events) > 0 {
		err := e.o.Spool.Append(events)
		if err != nil {
			// An event the spool cannot encode must not stop the collector:
			// a restart would see the same data again (a crash loop).
			if ok := e.quarantine(events); len(ok) < len(events) {
				events = ok
				err = e.o.Spool.Append(events)
			}
		}
		if err != nil {
			// The monitor already holds the uncommitted change: the loop
			// must stop (Run returns this), and a restart reconciles.
			e.fatal = fmt.Errorf("commit %d events to the spool: %w", len(events), err)
			return e.fatal
		}
		if e.o.Committed != nil {
			e.o.Committed(events)
		}
	}
	if len(check) > 0 {
		slices.Sort(check)
		e.o.Poller.CheckNow(slices.Compact(check)...)
	}
	return nil
}

// quarantine returns the events protobuf can encode; each one it cannot is
// logged (with the last committed seq, its kind and streamer) and counted,
// then dropped. Observations are sanitized before the monitor, so this is
// the backstop for what sanitizing did not foresee.
func (e *Engine) quarantine(events []*kickmonv1.Event) []*kickmonv1.Event {
	ok := events[:0:0]
	for _, ev := range events {
		if _, err := proto.Marshal(ev); err != nil {
			e.o.Logger.Error("event quarantined: it cannot be encoded, so it is dropped",
				logkeys.After, e.o.Spool.LastSeq(), logkeys.Event, ev.GetKind().String(),
				logkeys.UserID, ev.GetStreamer().GetBroadcasterUserId(), logkeys.Err, err)
			if e.o.Quarantined != nil {
				e.o.Quarantined(ev)
			}
			continue
		}
		ok = append(ok, ev)
	}
	return ok
}

// watch tells every source about a streamer (again, idempotently).
func (e *Engine) watch(userID, channelID int64) {
	e.o.Poller.Watch(userID, channelID)
	if e.o.Pusher != nil && channelID != 0 {
		e.o.Pusher.Subscribe(channelID, userID)
	}
}

func (e *Engine) unwatch(userID, channelID int64) {
	e.o.Poller.Unwatch(userID)
	if e.o.Pusher != nil && channelID != 0 {
		e.o.Pusher.Unsubscribe(channelID)
	}
}

// do runs f inside the loop and waits for it.
func (e *Engine) do(ctx context.Context, f func() error) error {
	if !e.running.Load() {
		return ErrStopped
	}
	errc := make(chan error, 1)
	select {
	case e.calls <- func() {
		err := f()
		e.storeCounts() // before the caller sees the result
		errc <- err
	}:
	case <-e.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Healthy fails when the loop has not turned for longer than stall; the
// loop turns at least every second when idle.
func (e *Engine) Healthy(stall time.Duration) error {
	if !e.running.Load() {
		return errors.New("main loop not running")
	}
	if since := time.Since(e.born) - time.Duration(e.progress.Load()); since > stall {
		return fmt.Errorf("main loop stalled for %s", since.Round(time.Second))
	}
	return nil
}

// List answers ListStreamers: the watch list (or what changed since the
// request's changed_since) and the seq it reflects.
func (e *Engine) List(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error) {
	since := e.changesSince(req.GetChangedSince())
	var res *kickmonv1.ListStreamersResponse
	err := e.do(ctx, func() error {
		res = &kickmonv1.ListStreamersResponse{
			Streamers:    e.o.Monitor.List(since, req.GetConfirmationsOnly()),
			LastSeq:      e.o.Spool.LastSeq(),
			ChangesToken: e.run + "." + strconv.FormatUint(e.o.Monitor.Changes(), 10),
			ChangesOnly:  since > 0,
		}
		if req.GetIncludeRemoved() {
			res.Streamers = append(res.Streamers, e.o.Monitor.Removed()...)
		}
		return nil
	})
	return res, err
}

// changesSince is the monitor's change count a changes token of this run
// names; 0 (everything) for any other token.
func (e *Engine) changesSince(token string) uint64 {
	run, count, ok := strings.Cut(token, ".")
	if !ok || run != e.run {
		return 0
	}
	n, err := strconv.ParseUint(count, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Get returns one watched streamer by slug or user id.
func (e *Engine) Get(ctx context.Context, slug string, userID int64) (*kickmonv1.Streamer, error) {
	var st *kickmonv1.Streamer
	err := e.do(ctx, func() error {
		var ok bool
		if slug != "" {
			st, ok = e.o.Monitor.BySlug(normalize(slug))
		} else {
			st, ok = e.o.Monitor.Streamer(userID)
		}
		if !ok {
			return fmt.Errorf("%w: streamer is not watched", rpc.ErrNotFound)
		}
		return nil
	})
	return st, err
}

// storeCounts publishes the monitor's counts for Counts (loop only).
func (e *Engine) storeCounts() {
	e.total.Store(int64(e.o.Monitor.Len()))
	e.live.Store(int64(e.o.Monitor.Live()))
}

// Counts returns how many streamers are watched and live, as of the loop's
// last turn. It never waits for the loop, so metrics scrapes and status
// calls stay cheap at 100k streamers and answer while the loop is busy.
func (e *Engine) Counts() (total, live int64) {
	return e.total.Load(), e.live.Load()
}

// normalize is the slug as the monitor keys it (an invalid one finds nothing).
func normalize(slug string) string {
	n, _ := poller.NormalizeSlug(slug)
	return n
}

// Add resolves slugs through the official API and watches them. Each slug
// gets its own result, in order; channelID applies only to a single slug.
func (e *Engine) Add(ctx context.Context, slugs []string, channelID int64) ([]*kickmonv1.StreamerResult, error) {
	if channelID < 0 {
		return nil, fmt.Errorf("%w: channel_id %d must be positive", rpc.ErrInvalidArgument, channelID)
	}
	if channelID != 0 && len(slugs) != 1 {
		return nil, fmt.Errorf("%w: channel_id needs exactly one slug, got %d", rpc.ErrInvalidArgument, len(slugs))
	}
	if len(slugs) == 0 {
		return nil, nil
	}
	return e.AddResolved(ctx, e.o.Resolve(ctx, slugs), channelID)
}

// AddResolved watches streamers already resolved; a resolution with an
// error becomes a failed result.
func (e *Engine) AddResolved(ctx context.Context, resolved []poller.Resolution, channelID int64) ([]*kickmonv1.StreamerResult, error) {
	results := make([]*kickmonv1.StreamerResult, len(resolved))
	err := e.do(ctx, func() error {
		var all []monitor.Result
		for i, r := range resolved {
			res := &kickmonv1.StreamerResult{Slug: r.Slug}
			results[i] = res
			if r.Err != nil {
				res.Error = r.Err.Error()
				continue
			}
			slug, _ := poller.NormalizeSlug(r.Slug)
			_, existed := e.o.Monitor.Streamer(r.UserID)
			mr := e.o.Monitor.Add(monitor.Identity{UserID: r.UserID, Slug: slug, ChannelID: channelID}, e.o.Now())
			all = append(all, mr)
			if r.Current != nil && !existed {
				all = append(all, e.feed(*r.Current))
			}
			st, _ := e.o.Monitor.Streamer(r.UserID)
			e.watch(r.UserID, st.GetChannelId())
			res.Streamer, res.Unchanged = st, existed && len(mr.Events) == 0
		}
		return e.apply(all...)
	})
	return results, err
}

// Remove stops watching streamers by slug.
func (e *Engine) Remove(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error) {
	results := make([]*kickmonv1.StreamerResult, len(slugs))
	err := e.do(ctx, func() error {
		var all []monitor.Result
		for i, s := range slugs {
			res := &kickmonv1.StreamerResult{Slug: s}
			results[i] = res
			st, ok := e.o.Monitor.BySlug(normalize(s))
			if !ok {
				res.Error = fmt.Sprintf("%q is not watched", s)
				continue
			}
			mr := e.o.Monitor.Remove(st.GetBroadcasterUserId(), e.o.Now())
			all = append(all, mr)
			e.unwatch(st.GetBroadcasterUserId(), st.GetChannelId())
			res.Streamer = st
			if n := len(mr.Events); n > 0 {
				res.Streamer = mr.Events[n-1].GetStreamer()
			}
		}
		return e.apply(all...)
	})
	return results, err
}

// Refresh asks the poller to check streamers now (all when slugs is empty).
func (e *Engine) Refresh(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error) {
	var results []*kickmonv1.StreamerResult
	err := e.do(ctx, func() error {
		var ids []int64
		if len(slugs) == 0 {
			for _, st := range e.o.Monitor.Streamers() {
				results = append(results, &kickmonv1.StreamerResult{Slug: st.GetSlug(), Streamer: st})
				ids = append(ids, st.GetBroadcasterUserId())
			}
		}
		for _, s := range slugs {
			res := &kickmonv1.StreamerResult{Slug: s}
			if st, ok := e.o.Monitor.BySlug(normalize(s)); ok {
				res.Streamer = st
				ids = append(ids, st.GetBroadcasterUserId())
			} else {
				res.Error = fmt.Sprintf("%q is not watched", s)
			}
			results = append(results, res)
		}
		if len(ids) > 0 {
			e.o.Poller.CheckNow(ids...)
		}
		return nil
	})
	return results, err
}
