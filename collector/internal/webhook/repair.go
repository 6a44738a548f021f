package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/proto/backoff"
)

// SubscriptionAPI is the part of the REST client the Repairer uses.
type SubscriptionAPI interface {
	Subscriptions(ctx context.Context) ([]kickrest.Subscription, error)
	CreateSubscription(ctx context.Context, userID int64, events []kickrest.EventSpec) ([]kickrest.SubscriptionResult, error)
}

// DefaultRepairInterval is how often the Repairer lists subscriptions
// (Kick auto-unsubscribes after about a day of failures; community
// clients repair every 30 minutes, kick-api.md §4.10).
const DefaultRepairInterval = 30 * time.Minute

// DefaultMaxPerRound caps the subscription calls of one repair: they come
// out of the poller's request budget (kickrest's, shared), so a long watch
// list is subscribed over a few rounds rather than starving the polls.
const DefaultMaxPerRound = 10

// Per-streamer retry of a failed subscription: from retryBase, doubling
// with full jitter, up to retryMaxRounds repair intervals.
const (
	retryBase      = time.Minute
	retryMaxRounds = 8
)

// Events are the webhook events kickmon subscribes to for every streamer.
var Events = []kickrest.EventSpec{kickrest.EventLivestreamStatus, kickrest.EventLivestreamMetadata}

// Repairer keeps a webhook subscription to Events for every watched
// streamer: it lists the app's subscriptions and re-creates the missing
// ones, at start and then every Interval.
type Repairer struct {
	API SubscriptionAPI
	// Watched returns the user ids of the watched streamers.
	Watched func() []int64
	// Interval between repairs (DefaultRepairInterval when 0).
	Interval time.Duration
	// Wake, if set, asks for a repair now (e.g. after streamers were added,
	// so they are subscribed without waiting for the interval).
	Wake   <-chan struct{}
	Logger *slog.Logger
	// MaxPerRound caps CreateSubscription calls per repair
	// (DefaultMaxPerRound when 0). When streamers are left over, the next
	// repair comes within a minute.
	MaxPerRound int

	// retry holds the streamers whose subscription failed: each backs off
	// on its own. Owned by Run (or the caller of RepairOnce).
	retry map[int64]*retry
	track tracker // what WebhookStatus reports
}

// key is one event subscription of one streamer.
type key struct {
	user  int64
	event string
}

type retry struct {
	b     backoff.Backoff
	until time.Time
}

// Run repairs now, then every Interval and on Wake, until ctx ends; it returns nil
// after a cancelled context. A failed round is logged and retried at the
// next tick.
func (r *Repairer) Run(ctx context.Context) error {
	if r.API == nil || r.Watched == nil {
		return errors.New("webhook: Repairer needs API and Watched")
	}
	every := r.every()
	log := r.logger()
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		n, left, err := r.repair(ctx, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("webhook subscription repair failed", logkeys.Err, err, logkeys.Count, n)
		} else if n > 0 {
			log.Info("re-created webhook subscriptions", logkeys.Count, n)
		}
		next := every
		if left > 0 {
			next = min(every, time.Minute)
			log.Info("more webhook subscriptions to create next round", logkeys.Count, left, logkeys.Backoff, next)
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.Wake:
		}
	}
}

func (r *Repairer) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger.With(logkeys.Component, "webhook-repair")
}

// RepairOnce creates the missing subscriptions and returns how many event
// subscriptions it created. It goes on after a streamer fails and returns
// the failures joined. It makes at most MaxPerRound calls, and skips the
// streamers whose last attempt failed until their backoff ends.
func (r *Repairer) RepairOnce(ctx context.Context) (int, error) {
	n, _, err := r.repair(ctx, time.Now())
	return n, err
}

// repair is RepairOnce; left is how many streamers still lack
// subscriptions and were not tried for the cap (not for their backoff).
func (r *Repairer) repair(ctx context.Context, now time.Time) (created, left int, _ error) {
	subs, err := r.API.Subscriptions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list webhook subscriptions: %w", err)
	}
	if r.retry == nil {
		r.retry = make(map[int64]*retry)
	}
	maxCalls := r.MaxPerRound
	if maxCalls <= 0 {
		maxCalls = DefaultMaxPerRound
	}
	have := make(map[key]bool, len(subs))
	for _, s := range subs {
		if s.Method == "" || s.Method == "webhook" {
			have[key{s.BroadcasterUserID, s.Event}] = true
		}
	}
	watched := r.Watched()
	for _, d := range r.track.listed(have, watched) {
		r.logger().Warn("Kick dropped a webhook subscription (auto-unsubscribed after failed deliveries, or webhooks switched off); re-creating it",
			logkeys.UserID, d.user, logkeys.Event, d.event)
	}
	calls := 0
	var errs []error
	defer func() { r.track.repaired(have, watched, errors.Join(errs...)) }()
	if r.track.capped(len(watched)) {
		return 0, 0, nil // Kick's subscription limit: not asking again until the list shrinks
	}
	for _, uid := range watched {
		var missing []kickrest.EventSpec
		for _, ev := range Events {
			if !have[key{uid, ev.Name}] {
				missing = append(missing, ev)
			}
		}
		rt := r.retry[uid]
		switch {
		case len(missing) == 0:
			delete(r.retry, uid)
			continue
		case rt != nil && now.Before(rt.until):
			continue
		case calls >= maxCalls:
			left++
			continue
		}
		calls++
		res, err := r.API.CreateSubscription(ctx, uid, missing)
		failed := err != nil
		if err != nil {
			errs = append(errs, fmt.Errorf("subscribe user %d: %w", uid, err))
			if ctx.Err() != nil || r.track.capIn(err.Error(), len(watched)) {
				break
			}
		}
		full := false
		for _, x := range res {
			if x.Error != "" {
				failed = true
				errs = append(errs, fmt.Errorf("subscribe user %d to %s: %s", uid, x.Name, x.Error))
				full = full || r.track.capIn(x.Error, len(watched))
				continue
			}
			created++
			have[key{uid, x.Name}] = true
		}
		if full {
			r.logger().Error("Kick's webhook subscription limit reached; not subscribing more streamers until some are removed", logkeys.Count, len(watched))
			break
		}
		if !failed {
			delete(r.retry, uid)
			continue
		}
		if rt == nil {
			rt = &retry{b: backoff.Backoff{Policy: backoff.Policy{Base: retryBase, Max: retryMaxRounds * r.every()}}}
			r.retry[uid] = rt
		}
		rt.until = now.Add(rt.b.Failed(now))
	}
	return created, left, errors.Join(errs...)
}

func (r *Repairer) every() time.Duration {
	if r.Interval <= 0 {
		return DefaultRepairInterval
	}
	return r.Interval
}
