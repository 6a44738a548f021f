package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// The notification outbox: for every notable event the writer stores, it
// inserts one kickmon.notify_outbox row (seq, changes) in the same
// transaction, so a notification is neither lost (the row commits with
// the event) nor doubled (replayed events are at or below the cursor and
// skipped before this point; seq is the primary key besides). kicknotify
// moves the rows into its River queue (deleting them in the transaction
// that inserts the jobs) and works the jobs: the writer's transaction pays
// for one small insert, not for River's indexed job rows. These names are
// the contract between the two modules.
const (
	// RiverSchema is the PostgreSQL schema holding River's tables,
	// migrated by the writer (MigrateRiver) for kicknotify.
	RiverSchema = "kickmon_river"
	// OutboxChannel is NOTIFYed (empty payload) by the outbox table's
	// trigger when a statement inserted rows, sent at commit: kicknotify
	// LISTENs on it.
	OutboxChannel = "kickmon_outbox"
)

// Changes named in an outbox row, as in notify.yaml's events list.
const (
	ChangeLive     = "live"
	ChangeOffline  = "offline"
	ChangeTitle    = "title"
	ChangeCategory = "category"
	ChangeRenamed  = "renamed"
)

// MigrateRiver creates RiverSchema and applies River's own migrations
// (River's migrator: one transaction per version, as some of its steps
// cannot share one). The writer no longer inserts jobs; it keeps River's
// tables migrated so that kicknotify finds them.
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+RiverSchema+`;
COMMENT ON SCHEMA `+RiverSchema+` IS 'River job queue of kicknotify, migrated by kickwriter; kicknotify fills it from kickmon.notify_outbox.'`); err != nil {
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

// DisableOutbox stops writing the notification outbox (KICKMON_NOTIFY_OUTBOX=false).
func (s *Store) DisableOutbox() { s.outboxOff = true }

// outboxRows returns the parameters of the outbox rows of the notable
// events of fresh (ascending, all above the cursor), or nil for none. A
// title or category change is found by comparing a STREAM_UPDATED with the
// streamer's previous state: the earlier events of the batch (here, in
// Go), or else the streamers row (in the statement, which runs with the
// streamers upsert and sees the rows as they were before it). The rows do
// not depend on how events are batched (the consumer tests compare
// databases written in different batchings).
func (s *Store) outboxRows(fresh []*kickmonv1.Event) (*params, error) {
	if s.outboxOff {
		return nil, nil
	}
	type shown struct{ title, category string }
	seen := map[int64]shown{} // the latest state of each streamer in the batch so far
	var (
		seq, uid          []int64
		changes, title, c []string
	)
	for _, e := range fresh {
		st := e.GetStreamer()
		id := st.GetBroadcasterUserId()
		var ch string
		switch e.GetKind() {
		case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
			ch = ChangeLive
		case kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
			ch = ChangeOffline
		case kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED:
			ch = ChangeRenamed
		case kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
			if st.GetState() != kickmonv1.LiveState_LIVE_STATE_LIVE {
				break
			}
			p, ok := seen[id]
			if !ok { // the statement compares with the streamers row
				seq, uid, changes = append(seq, int64(e.GetSeq())), append(uid, id), append(changes, "")
				title, c = append(title, st.GetTitle()), append(c, st.GetCategoryName())
				break
			}
			var cs []string
			if p.title != st.GetTitle() {
				cs = append(cs, ChangeTitle)
			}
			if p.category != st.GetCategoryName() {
				cs = append(cs, ChangeCategory)
			}
			ch = strings.Join(cs, ",")
		}
		seen[id] = shown{st.GetTitle(), st.GetCategoryName()}
		if ch != "" {
			seq, uid, changes = append(seq, int64(e.GetSeq())), append(uid, id), append(changes, ch)
			title, c = append(title, ""), append(c, "")
		}
	}
	if len(seq) == 0 {
		return nil, nil
	}
	m := typeMaps.Get().(*pgtype.Map)
	defer typeMaps.Put(m)
	p, err := encodeParams(m, []any{seq, uid, changes, title, c})
	if err != nil {
		return nil, invalid("encode outbox rows: %v", err)
	}
	return &p, nil
}

// streamersWithOutbox returns the statement (its name and SQL) and the
// parameters of the streamers upsert (sp, its encoded parameters) with the
// outbox rows (ob, from outboxRows; nil for none) in one statement: the
// outbox insert is a data-modifying WITH in front of the upsert, so it
// costs the flush no statement of its own, and it reads the streamers rows
// from the statement's snapshot, before the upsert. The command tag is the
// upsert's. (Every fresh event has a streamers row, so this statement runs
// whenever there are outbox rows.)
func streamersWithOutbox(sp params, ob *params) (stmt, sql string, p params) {
	if ob == nil {
		return "kickmon_streamers", upsertStreamers, sp
	}
	both := params{
		values:  append(slices.Clip(sp.values), ob.values...),
		oids:    append(slices.Clip(sp.oids), ob.oids...),
		formats: append(slices.Clip(sp.formats), ob.formats...),
	}
	n := len(sp.values)
	return "kickmon_streamers_outbox", fmt.Sprintf(withOutbox, n+1, n+2, n+3, n+4, n+5) + upsertStreamers, both
}

// withOutbox inserts the outbox rows, given as (seq, broadcaster_user_id,
// changes, title, category) arrays in the parameters after the upsert's
// (their numbers are filled in): changes
// decided by the writer (comma-separated), or "" for a live STREAM_UPDATED
// whose previous state is the streamers row: a row is inserted if its
// title or category differs. The table's trigger NOTIFYs OutboxChannel.
const withOutbox = `
WITH outbox AS (
    INSERT INTO kickmon.notify_outbox (seq, changes)
    SELECT o.seq, CASE WHEN o.changes <> '' THEN string_to_array(o.changes, ',')
        ELSE array_remove(ARRAY[CASE WHEN coalesce(s.title, '') <> o.title THEN 'title' END,
                                CASE WHEN coalesce(s.category_name, '') <> o.cat THEN 'category' END], NULL) END
    FROM unnest($%[1]d::bigint[], $%[2]d::bigint[], $%[3]d::text[], $%[4]d::text[], $%[5]d::text[])
        AS o(seq, uid, changes, title, cat)
    LEFT JOIN kickmon.streamers s ON o.changes = '' AND s.broadcaster_user_id = o.uid
    WHERE o.changes <> '' OR (s.broadcaster_user_id IS NOT NULL
        AND (coalesce(s.title, '') <> o.title OR coalesce(s.category_name, '') <> o.cat))
    ON CONFLICT (seq) DO NOTHING)`
