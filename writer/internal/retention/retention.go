// Package retention keeps kickmon.status_events bounded: at start and then
// every Interval it creates the partitions of the current and next months
// ahead, and drops whole month partitions whose every event is older than
// KICKMON_EVENTS_RETENTION. Dropping a partition is instant and leaves no
// bloat, unlike deleting rows; the price is month granularity: events are
// kept for the retention plus up to a month.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/kickmon/kickmon/writer/internal/logkeys"
	"github.com/kickmon/kickmon/writer/internal/store"
)

// Options tune the maintenance; zero values take the defaults noted.
type Options struct {
	// Retention is how long events are kept; 0 keeps every event.
	Retention time.Duration
	// Interval between rounds (1h).
	Interval time.Duration
	// Ahead is how many months after the current one get a partition (1).
	Ahead int
}

// Once runs one round at now: partitions ahead, then the drop. It returns
// the partitions dropped.
func Once(ctx context.Context, st *store.Store, opts Options, now time.Time) ([]string, error) {
	ahead := opts.Ahead
	if ahead <= 0 {
		ahead = 1
	}
	if err := st.EnsurePartitions(ctx, now, ahead); err != nil {
		return nil, err
	}
	if opts.Retention <= 0 {
		return nil, nil
	}
	return st.DropPartitionsBefore(ctx, now.Add(-opts.Retention), now)
}

// Run runs a round at once and then every Interval until ctx ends. A
// failed round (the database is down) is logged and tried again at the
// next one: flushes create a missing partition themselves meanwhile.
func Run(ctx context.Context, st *store.Store, log *slog.Logger, opts Options) {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		if _, err := Once(ctx, st, opts, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("status_events partition maintenance failed; trying again later", logkeys.Err, err, logkeys.Backoff, opts.Interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
