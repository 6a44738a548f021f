package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Confirmed says what RefreshConfirmed did.
type Confirmed struct {
	// Rows counts the streamers rows whose confirmation times moved forward.
	Rows int64
	// Cursor is the writer cursor the statement saw, in the collector's
	// log's numbering (as the list's seq is).
	Cursor uint64
	// Behind is true when Cursor was below the list's seq: the database did
	// not yet reflect the states the list confirms, and nothing was written.
	Behind bool
}

// RefreshConfirmed moves confirmation times forward from the collector's
// watch list (ListStreamers), which reflects the events up to asOf: each
// existing streamers row gets last_confirmed_at = greatest(its own, the
// list's), and each of its coverage entries the same for that source's
// last_confirmed_at. It is one statement and touches nothing else: no row
// is created, last_event_seq and every event-written column stay as they
// are, and no time moves backwards.
//
// A confirmation is about a state, so it is written only where the row
// shows the state the list confirms: when the cursor has reached asOf (else
// Behind, and nothing is written; try again later) and the row reflects no
// event after asOf. Rows that a flush holds locked are skipped (the next
// refresh gets them), so the refresh never waits for the writer's
// transactions and cannot deadlock with them.
func (s *Store) RefreshConfirmed(ctx context.Context, asOf uint64, list []*kickmonv1.Streamer) (Confirmed, error) {
	var (
		uid       []int64
		confirmed []pgtype.Timestamptz
		coverage  []string
		buf       []byte
	)
	for _, st := range list {
		if st.GetBroadcasterUserId() <= 0 {
			continue
		}
		uid = append(uid, st.GetBroadcasterUserId())
		confirmed = append(confirmed, validTS(st.GetLastConfirmedAt()))
		buf = appendSourceTimes(buf[:0], st.GetCoverage())
		coverage = append(coverage, string(buf))
	}
	var cursor, rows int64
	if err := s.pool.QueryRow(ctx, refreshConfirmed, int64(min(asOf, 1<<63-1)), uid, confirmed, coverage).Scan(&cursor, &rows); err != nil {
		return Confirmed{}, fmt.Errorf("refresh confirmation times of %d streamers: %w", len(uid), err)
	}
	return Confirmed{Rows: rows, Cursor: uint64(cursor), Behind: uint64(cursor) < asOf}, nil
}

// validTS is ts for a timestamp PostgreSQL can hold, else NULL (an invalid
// one must not fail the whole refresh).
func validTS(t *timestamppb.Timestamp) pgtype.Timestamptz {
	if t.CheckValid() != nil {
		return pgtype.Timestamptz{}
	}
	return ts(t)
}

// appendSourceTimes encodes each source's last_confirmed_at as a JSON
// object keyed by the source as the coverage column names it
// ({"SOURCE_POLL": "2026-05-01T18:00:00Z"}), the latest per source,
// timestamps formatted as the event-written coverage has them.
func appendSourceTimes(b []byte, cs []*kickmonv1.Coverage) []byte {
	latest := map[kickmonv1.Source]*timestamppb.Timestamp{}
	var order []kickmonv1.Source
	for _, c := range cs {
		t := c.GetLastConfirmedAt()
		if c.GetSource() == kickmonv1.Source_SOURCE_UNSPECIFIED || t.CheckValid() != nil {
			continue
		}
		prev, ok := latest[c.GetSource()]
		if !ok {
			order = append(order, c.GetSource())
		}
		if !ok || t.AsTime().After(prev.AsTime()) {
			latest[c.GetSource()] = t
		}
	}
	o := newObj(b)
	for _, src := range order {
		o.ts(src.String(), latest[src])
	}
	return o.end()
}

// refreshConfirmed is RefreshConfirmed's statement: $1 the list's seq, then
// per streamer its user id, last_confirmed_at and source times (see
// appendSourceTimes). It returns the cursor it saw (in the log's
// numbering) and the rows it moved. The list's seq is the collector's; the
// stored seqs are the log's plus writer_cursor.seq_offset (see logid.go).
const refreshConfirmed = `
WITH cur AS (SELECT last_seq, $1::bigint + seq_offset AS as_of, last_seq - seq_offset AS log_seq FROM kickmon.writer_cursor),
u AS (
    SELECT uid, confirmed, cov::jsonb AS cov
    FROM unnest($2::bigint[], $3::timestamptz[], $4::text[]) AS u(uid, confirmed, cov)
),
-- The rows to move: existing, showing the listed state, and with a time to
-- move forward. SKIP LOCKED: never wait for (or deadlock with) a flush.
due AS (
    SELECT t.broadcaster_user_id AS uid
    FROM kickmon.streamers AS t JOIN u ON u.uid = t.broadcaster_user_id
    WHERE (SELECT last_seq FROM cur) >= (SELECT as_of FROM cur) AND t.last_event_seq <= (SELECT as_of FROM cur)
      AND (u.confirmed > t.last_confirmed_at
           OR (t.last_confirmed_at IS NULL AND u.confirmed IS NOT NULL)
           OR EXISTS (SELECT FROM jsonb_array_elements(t.coverage) AS e(c)
                      WHERE (u.cov ->> (e.c ->> 'source'))::timestamptz
                            > coalesce((e.c ->> 'last_confirmed_at')::timestamptz, '-infinity')))
    FOR UPDATE OF t SKIP LOCKED
),
moved AS (
    UPDATE kickmon.streamers AS t SET
        last_confirmed_at = greatest(t.last_confirmed_at, u.confirmed),
        coverage = coalesce((
            SELECT jsonb_agg(CASE WHEN (u.cov ->> (e.c ->> 'source'))::timestamptz
                                       > coalesce((e.c ->> 'last_confirmed_at')::timestamptz, '-infinity')
                                  THEN jsonb_set(e.c, '{last_confirmed_at}', u.cov -> (e.c ->> 'source'))
                                  ELSE e.c END ORDER BY e.i)
            FROM jsonb_array_elements(t.coverage) WITH ORDINALITY AS e(c, i)), t.coverage)
    FROM due JOIN u USING (uid)
    WHERE t.broadcaster_user_id = due.uid AND t.last_event_seq <= (SELECT as_of FROM cur)
    RETURNING 1
)
SELECT (SELECT log_seq FROM cur), (SELECT count(*) FROM moved)`
