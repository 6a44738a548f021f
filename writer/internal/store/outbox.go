package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// The notification outbox: for every notable event the writer stores, it
// enqueues one River job in the same transaction, so a notification is
// neither lost (the job commits with the event) nor doubled (replayed
// events are at or below the cursor and skipped before this point; the job
// is unique per seq besides, for a cursor rewound by hand). kicknotify
// works the jobs. These names are the contract between the two modules.
const (
	// RiverSchema is the PostgreSQL schema holding River's tables.
	RiverSchema = "kickmon_river"
	// OutboxQueue is the River queue the writer's jobs go to.
	OutboxQueue = "events"
	// OutboxJobKind is the River job kind of EventArgs.
	OutboxJobKind = "kickmon_event"
)

// Changes named in EventArgs.Changes, as in notify.yaml's events list.
const (
	ChangeLive     = "live"
	ChangeOffline  = "offline"
	ChangeTitle    = "title"
	ChangeCategory = "category"
	ChangeRenamed  = "renamed"
)

// EventArgs is the job the writer enqueues for a notable event. It is kept
// small on purpose: River indexes job args (GIN), and with the whole event
// in them (~1 KB) the enqueue cost the writer most of its throughput when
// every event was a notable one. kicknotify reads the event from
// kickmon.status_events by seq, committed in the same transaction.
type EventArgs struct {
	// Seq is the event's seq; the job is unique per seq.
	Seq uint64 `json:"seq" river:"unique"`
	// Changes says what is notable: live, offline, title, category, renamed.
	Changes []string `json:"changes"`
}

// Kind is the River job kind.
func (EventArgs) Kind() string { return OutboxJobKind }

// InsertOpts makes the job unique per seq for as long as River keeps it.
func (EventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: OutboxQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// newOutbox returns an insert-only River client on pool.
func newOutbox(pool *pgxpool.Pool) (*river.Client[pgx.Tx], error) {
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: RiverSchema})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return c, nil
}

// MigrateRiver creates RiverSchema and applies River's own migrations
// (River's migrator: one transaction per version, as some of its steps
// cannot share one).
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+RiverSchema+`;
COMMENT ON SCHEMA `+RiverSchema+` IS 'River job queue: the notification outbox, filled by kickwriter, worked by kicknotify.'`); err != nil {
		return fmt.Errorf("create schema %s: %w", RiverSchema, err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: RiverSchema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// DisableOutbox stops enqueueing notification jobs (KICKMON_NOTIFY_OUTBOX=false).
func (s *Store) DisableOutbox() { s.outboxOff = true }

// enqueue inserts one job per notable event of fresh (ascending, all
// above the cursor) in tx. The jobs do not depend on how events are
// batched (the consumer tests compare databases written in different
// batchings). Title and category changes are found by
// comparing each STREAM_UPDATED with the streamer's previous state: the
// earlier events of the batch, else the streamers row (not yet updated by
// this transaction).
func (s *Store) enqueue(ctx context.Context, tx pgx.Tx, fresh []*kickmonv1.Event) error {
	if s.outboxOff || s.outbox == nil {
		return nil
	}
	type shown struct{ title, category string }
	var prev map[int64]shown
	var ids []int64
	for _, e := range fresh {
		if e.GetKind() == kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED {
			ids = append(ids, e.GetStreamer().GetBroadcasterUserId())
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > 0 {
		s.hook(ctx, "outbox previous state")
		rows, err := tx.Query(ctx, `SELECT broadcaster_user_id, coalesce(title, ''), coalesce(category_name, '')
FROM kickmon.streamers WHERE broadcaster_user_id = ANY($1)`, ids)
		if err != nil {
			return fmt.Errorf("outbox: read previous titles: %w", err)
		}
		prev = map[int64]shown{}
		var id int64
		var sh shown
		if _, err := pgx.ForEachRow(rows, []any{&id, &sh.title, &sh.category}, func() error {
			prev[id] = sh
			return nil
		}); err != nil {
			return fmt.Errorf("outbox: read previous titles: %w", err)
		}
	}
	var params []river.InsertManyParams
	for _, e := range fresh {
		st := e.GetStreamer()
		uid := st.GetBroadcasterUserId()
		var changes []string
		switch e.GetKind() {
		case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
			changes = []string{ChangeLive}
		case kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
			changes = []string{ChangeOffline}
		case kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED:
			changes = []string{ChangeRenamed}
		case kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
			if p, ok := prev[uid]; ok && st.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE {
				if p.title != st.GetTitle() {
					changes = append(changes, ChangeTitle)
				}
				if p.category != st.GetCategoryName() {
					changes = append(changes, ChangeCategory)
				}
			}
		}
		if prev != nil {
			prev[uid] = shown{st.GetTitle(), st.GetCategoryName()}
		}
		if len(changes) == 0 {
			continue
		}
		params = append(params, river.InsertManyParams{Args: EventArgs{Seq: e.GetSeq(), Changes: changes}})
	}
	if len(params) == 0 {
		return nil
	}
	s.hook(ctx, "outbox")
	if _, err := s.outbox.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("outbox: enqueue %d notification jobs: %w", len(params), err)
	}
	return nil
}
