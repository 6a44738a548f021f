package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
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

	track tracker // what WebhookStatus reports
}

// key is one event subscription of one streamer.
type key struct {
	user  int64
	event string
}

// Run repairs now, then every Interval and on Wake, until ctx ends; it returns nil
// after a cancelled context. A failed round is logged and retried at the
// next tick.
func (r *Repairer) Run(ctx context.Context) error {
	if r.API == nil || r.Watched == nil {
		return errors.New("webhook: Repairer needs API and Watched")
	}
	every := r.Interval
	if every <= 0 {
		every = DefaultRepairInterval
	}
	log := r.logger()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := r.RepairOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("webhook subscription repair failed", logkeys.Err, err, logkeys.Count, n)
		} else if n > 0 {
			log.Info("re-created webhook subscriptions", logkeys.Count, n)
		}
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
// the failures joined.
func (r *Repairer) RepairOnce(ctx context.Context) (int, error) {
	subs, err := r.API.Subscriptions(ctx)
	if err != nil {
		return 0, fmt.Errorf("list webhook subscriptions: %w", err)
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
	created := 0
	var errs []error
	defer func() { r.track.repaired(have, watched, errors.Join(errs...)) }()
	if r.track.capped(len(watched)) {
		return 0, nil // Kick's subscription limit: not asking again until the list shrinks
	}
	for _, uid := range watched {
		var missing []kickrest.EventSpec
		for _, ev := range Events {
			if !have[key{uid, ev.Name}] {
				missing = append(missing, ev)
			}
		}
		if len(missing) == 0 {
			continue
		}
		res, err := r.API.CreateSubscription(ctx, uid, missing)
		if err != nil {
			errs = append(errs, fmt.Errorf("subscribe user %d: %w", uid, err))
			if ctx.Err() != nil || r.track.capIn(err.Error(), len(watched)) {
				break
			}
			continue
		}
		full := false
		for _, x := range res {
			if x.Error != "" {
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
	}
	return created, errors.Join(errs...)
}
