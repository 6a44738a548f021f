package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"github.com/kickmon/kickmon/writer/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t testing.TB) (*store.Store, string) {
	t.Helper()
	db := writertest.NewDB(t)
	s, err := store.Open(context.Background(), db.URL, writertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, db.URL
}

func write(t testing.TB, s *store.Store, evs []*kickmonv1.Event) store.Result {
	t.Helper()
	res, err := s.Write(context.Background(), batch.Pending{Events: evs})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

func query[T any](t testing.TB, s *store.Store, sql string, args ...any) []T {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func setCursor(t testing.TB, s *store.Store, seq int64) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(), `UPDATE kickmon.writer_cursor SET last_seq = $1`, seq); err != nil {
		t.Fatal(err)
	}
}

func TestMigrate(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	from, to, err := s.Migrate(ctx)
	if err != nil || from != store.LatestVersion() || to != store.LatestVersion() {
		t.Fatalf("second Migrate = %d, %d, %v; want %d, %d, nil", from, to, err, store.LatestVersion(), store.LatestVersion())
	}
	// Every table and column carries a comment: the schema is the users' interface.
	type missing struct{ Table, Column string }
	got := query[missing](t, s, `
SELECT c.relname::text, coalesce(a.attname::text, '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'kickmon' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'schema_migrations'
  AND (obj_description(c.oid, 'pg_class') IS NULL OR col_description(c.oid, a.attnum) IS NULL)`)
	if len(got) > 0 {
		t.Errorf("tables/columns without COMMENT: %v", got)
	}

	if _, err := s.Pool().Exec(ctx, `INSERT INTO kickmon.schema_migrations (version, name) VALUES (99, 'future')`); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Migrate(ctx)
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("Migrate on a newer schema = %v, want store.ErrSchemaTooNew naming version 99", err)
	}
}

func TestEveryKindLandsInTheRightRows(t *testing.T) {
	s, _ := open(t)
	evs := writertest.Number(1, writertest.Scenario())
	// One event per flush and everything in one flush must give the same rows.
	for _, e := range evs[:6] {
		write(t, s, []*kickmonv1.Event{e})
	}
	res := write(t, s, evs[6:])
	if res.Cursor != uint64(len(evs)) {
		t.Fatalf("cursor %d, want %d", res.Cursor, len(evs))
	}

	type streamer struct {
		UID        int64
		Slug       string
		Live       bool
		State      string
		Title      string
		Viewers    int64
		Session    *string
		Seq        int64
		Removed    bool
		CovSources string
	}
	sess := "01J0000000000000000000000A"
	wantStreamers := []streamer{
		{101, "alpha", false, "OFFLINE", "hello again", 0, &sess, 9, false, "PUSHER"},
		{202, "bravo2", false, "OFFLINE", "", 0, nil, 12, true, ""},
	}
	gotStreamers := query[streamer](t, s, `SELECT broadcaster_user_id, slug, is_live, live_state, title, viewer_count, session_id,
  last_event_seq, removed_at IS NOT NULL, coalesce(coverage->0->>'source', '') FROM kickmon.streamers ORDER BY 1`)
	for i := range gotStreamers {
		gotStreamers[i].CovSources = strings.TrimPrefix(gotStreamers[i].CovSources, "SOURCE_")
	}
	if d := cmp.Diff(wantStreamers, gotStreamers); d != "" {
		t.Errorf("streamers (-want +got):\n%s", d)
	}

	type session struct {
		ID          string
		UID         int64
		Started     time.Time
		Provisional bool
		Ended       time.Time
		Title       string
		Peak        int64
		DetectedBy  string
		Seq         int64
	}
	wantSessions := []session{{sess, 101, writertest.T0.Add(57 * time.Second), false, writertest.T0.Add(6 * time.Minute), "hello again", 75, "pusher", 9}}
	gotSessions := query[session](t, s, `SELECT session_id, broadcaster_user_id, started_at, started_at_provisional, ended_at, title, peak_viewers, detected_by, last_event_seq FROM kickmon.stream_sessions`)
	for i := range gotSessions {
		gotSessions[i].Started, gotSessions[i].Ended = gotSessions[i].Started.UTC(), gotSessions[i].Ended.UTC()
	}
	if d := cmp.Diff(wantSessions, gotSessions); d != "" {
		t.Errorf("stream_sessions (-want +got):\n%s", d)
	}

	type event struct {
		Seq     int64
		Kind    string
		Source  string
		Session *string
		Prev    *string
		Slug    string
	}
	gotEvents := query[event](t, s, `SELECT seq, kind, source, session_id, previous_slug, state->>'slug' FROM kickmon.status_events ORDER BY seq`)
	bravo := "bravo"
	wantEvents := []event{
		{1, "STREAMER_ADDED", "operator", nil, nil, "alpha"},
		{2, "STREAMER_ADDED", "operator", nil, nil, "bravo"},
		{3, "STREAM_STARTED", "pusher", &sess, nil, "alpha"},
		{4, "STREAM_UPDATED", "poll", &sess, nil, "alpha"},
		{5, "STREAM_UPDATED", "pusher", &sess, nil, "alpha"},
		{6, "STREAMER_RENAMED", "poll", nil, &bravo, "bravo2"},
		{7, "COVERAGE_CHANGED", "collector", nil, nil, "alpha"},
		{8, "COVERAGE_CHANGED", "collector", nil, nil, "alpha"},
		{9, "STREAM_ENDED", "poll", &sess, nil, "alpha"},
		{10, "STREAMER_REMOVED", "operator", nil, nil, "bravo2"},
		{11, "STREAMER_ADDED", "operator", nil, nil, "bravo2"},
		{12, "STREAMER_REMOVED", "operator", nil, nil, "bravo2"},
	}
	if d := cmp.Diff(wantEvents, gotEvents); d != "" {
		t.Errorf("status_events (-want +got):\n%s", d)
	}

	type gap struct {
		UID     *int64
		Source  string
		Start   time.Time
		End     time.Time
		Reason  string
		Opened  int64
		Closed  int64
		NoRange bool
	}
	uid := int64(101)
	wantGaps := []gap{{&uid, "pusher", writertest.T0.Add(4 * time.Minute), writertest.T0.Add(5 * time.Minute), "socket down", 7, 8, true}}
	gotGaps := query[gap](t, s, `SELECT broadcaster_user_id, source, started_at, ended_at, reason, opened_seq, closed_seq, first_seq IS NULL FROM kickmon.coverage_gaps`)
	for i := range gotGaps {
		gotGaps[i].Start, gotGaps[i].End = gotGaps[i].Start.UTC(), gotGaps[i].End.UTC()
	}
	if d := cmp.Diff(wantGaps, gotGaps); d != "" {
		t.Errorf("coverage_gaps (-want +got):\n%s", d)
	}
}

func TestRemovedAtClearedByReAdd(t *testing.T) {
	s, _ := open(t)
	evs := writertest.Number(1, writertest.Scenario())
	write(t, s, evs[:11]) // ends with bravo re-added
	type row struct{ Removed bool }
	if got := query[row](t, s, `SELECT removed_at IS NOT NULL FROM kickmon.streamers WHERE broadcaster_user_id = 202`); len(got) != 1 || got[0].Removed {
		t.Fatalf("after re-add: %v, want removed_at NULL", got)
	}
}

func TestReplayChangesNothing(t *testing.T) {
	s, url := open(t)
	evs := writertest.Number(1, writertest.Scenario())
	write(t, s, evs)
	want := writertest.Dump(t, url)
	tests := []struct {
		name   string
		cursor int64 // cursor forced before the replay; -1 keeps it
		events []*kickmonv1.Event
	}{
		{"all again", -1, evs},
		{"a middle part again", -1, evs[3:8]},
		{"all again with the cursor rewound", 0, evs},
		{"second half with the cursor rewound", 6, evs[6:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cursor >= 0 {
				setCursor(t, s, tt.cursor)
			}
			write(t, s, tt.events)
			if tt.cursor >= 0 {
				setCursor(t, s, int64(len(evs)))
			}
			if d := cmp.Diff(want, writertest.Dump(t, url)); d != "" {
				t.Errorf("replay changed the database (-before +after):\n%s", d)
			}
		})
	}
}

func TestOlderEventCannotRegressARow(t *testing.T) {
	s, _ := open(t)
	newer := writertest.Updates(10, 1, 1)[0]
	newer.Streamer.Title, newer.Streamer.Session.Title = "newer", "newer"
	older := writertest.Updates(5, 1, 1)[0]
	older.Streamer.Title, older.Streamer.Session.Title = "older", "older"

	type row struct {
		Title, SessionTitle string
		Seq                 int64
	}
	check := func(t *testing.T) {
		t.Helper()
		got := query[row](t, s, `SELECT s.title, ss.title, s.last_event_seq FROM kickmon.streamers s JOIN kickmon.stream_sessions ss USING (session_id)`)
		if d := cmp.Diff([]row{{"newer", "newer", 10}}, got); d != "" {
			t.Errorf("rows (-want +got):\n%s", d)
		}
	}
	t.Run("in one batch, in the wrong order", func(t *testing.T) {
		write(t, s, []*kickmonv1.Event{newer, older})
		check(t)
	})
	t.Run("in a later batch past a rewound cursor", func(t *testing.T) {
		setCursor(t, s, 0)
		write(t, s, []*kickmonv1.Event{older})
		check(t)
	})
}

// Cancelling the transaction before any of its statements (or its commit)
// leaves the database as it was; writing again then gives the same result
// as an undisturbed write.
func TestCancelMidTransactionLosesNothing(t *testing.T) {
	evs := writertest.Number(1, writertest.Scenario())
	ref, refURL := open(t)
	write(t, ref, evs[:4])
	var names []string
	store.SetBeforeStatement(ref, func(_ context.Context, name string) { names = append(names, name) })
	write(t, ref, evs[4:])
	store.SetBeforeStatement(ref, nil)
	want := writertest.Dump(t, refURL)
	if len(names) < 6 {
		t.Fatalf("only %d statements observed: %v", len(names), names)
	}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			s, url := open(t)
			write(t, s, evs[:4])
			before := writertest.Dump(t, url)
			ctx, cancel := context.WithCancel(context.Background())
			n := 0
			store.SetBeforeStatement(s, func(context.Context, string) {
				if n == i {
					cancel()
				}
				n++
			})
			_, err := s.Write(ctx, batch.Pending{Events: evs[4:]})
			if err == nil {
				t.Fatalf("Write cancelled before %s succeeded", name)
			}
			store.SetBeforeStatement(s, nil)
			if d := cmp.Diff(before, writertest.Dump(t, url)); d != "" {
				t.Fatalf("a cancelled write changed the database (-before +after):\n%s", d)
			}
			write(t, s, evs) // the collector replays from the cursor (and earlier)
			if d := cmp.Diff(want, writertest.Dump(t, url)); d != "" {
				t.Errorf("after the retry (-want +got):\n%s", d)
			}
		})
	}
}

func TestBadEventIsQuarantined(t *testing.T) {
	s, _ := open(t)
	evs := writertest.Updates(1, 8, 3)
	evs[2].Streamer.Title = "bad\x00title" // PostgreSQL text cannot hold NUL: SQLSTATE 22P05/22021
	evs[5].Streamer = nil                  // refused before the database
	res := write(t, s, evs)
	if res.Quarantined != 2 || res.Applied != 6 || res.Cursor != 8 {
		t.Errorf("result %+v, want 2 quarantined, 6 applied, cursor 8", res)
	}
	type q struct {
		Seq   int64
		Kind  string
		Error string
	}
	got := query[q](t, s, `SELECT seq, kind, CASE WHEN error LIKE 'invalid event%' THEN 'invalid' ELSE 'database' END FROM kickmon.quarantine ORDER BY seq`)
	if d := cmp.Diff([]q{{3, "STREAM_UPDATED", "database"}, {6, "STREAM_UPDATED", "invalid"}}, got); d != "" {
		t.Errorf("quarantine (-want +got):\n%s", d)
	}
	type seq struct{ Seq int64 }
	if got := query[seq](t, s, `SELECT seq FROM kickmon.status_events ORDER BY seq`); len(got) != 6 {
		t.Errorf("status_events has %d rows, want 6: %v", len(got), got)
	}
	// The pipeline goes on.
	write(t, s, writertest.Updates(9, 2, 3))
	if c, _ := s.Cursor(context.Background()); c != 10 {
		t.Errorf("cursor %d after more events, want 10", c)
	}
}

// A row COPY rejects (a NUL, or invalid UTF-8, in a text column only
// status_events has) is isolated and quarantined like any other.
func TestBadEventInCopyIsQuarantined(t *testing.T) {
	s, _ := open(t)
	evs := writertest.Updates(1, 40, 5)
	evs[9].PreviousSlug = "bad\x00slug"
	evs[29].PreviousSlug = "bad\xffslug" // not even protobuf can encode it again
	res := write(t, s, evs)
	if res.Quarantined != 2 || res.Applied != 38 || res.Cursor != 40 {
		t.Errorf("result %+v, want 2 quarantined, 38 applied, cursor 40", res)
	}
	type q struct {
		Seq      int64
		HasProto bool
		HasSlug  bool
	}
	got := query[q](t, s, `SELECT seq, length(event_proto) > 0, event ? 'previous_slug' FROM kickmon.quarantine ORDER BY seq`)
	if d := cmp.Diff([]q{{10, true, true}, {30, false, false}}, got); d != "" {
		t.Errorf("quarantine (-want +got):\n%s", d)
	}
}

func TestLostSeqsBecomeGapRows(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	write(t, s, writertest.Updates(1, 3, 2))
	res := write(t, s, writertest.Updates(7, 2, 2))
	if res.Lost != 3 || res.Cursor != 8 {
		t.Fatalf("result %+v, want 3 lost, cursor 8", res)
	}
	if _, err := s.Write(ctx, batch.Pending{SkipTo: 20}); err != nil {
		t.Fatal(err)
	}
	type gap struct {
		UID         *int64
		Source      string
		First, Last int64
		HasStart    bool
		HasEnd      bool
	}
	got := query[gap](t, s, `SELECT broadcaster_user_id, source, first_seq, last_seq, started_at IS NOT NULL, ended_at IS NOT NULL FROM kickmon.coverage_gaps ORDER BY id`)
	want := []gap{{nil, "spool", 4, 6, true, true}, {nil, "spool", 9, 20, true, true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("coverage_gaps (-want +got):\n%s", d)
	}
	if c, _ := s.Cursor(ctx); c != 20 {
		t.Errorf("cursor %d, want 20", c)
	}
}

// The store remembers the cursor it committed to save a round trip; a
// cursor moved meanwhile (by hand here; a log switch does too) is noticed
// within the transaction, which then reads it: events at or below it are
// skipped, and the cursor never goes back.
func TestCursorMovedBehindTheStore(t *testing.T) {
	s, _ := open(t)
	write(t, s, writertest.Updates(1, 3, 2))
	setCursor(t, s, 10)
	res := write(t, s, writertest.Updates(4, 2, 2))
	if res.Skipped != 2 || res.Applied != 0 || res.Cursor != 10 {
		t.Errorf("result %+v, want 2 skipped, cursor 10", res)
	}
	if c, _ := s.Cursor(context.Background()); c != 10 {
		t.Errorf("cursor %d, want 10", c)
	}
	type seq struct{ Seq int64 }
	if got := query[seq](t, s, `SELECT seq FROM kickmon.status_events ORDER BY seq`); len(got) != 3 {
		t.Errorf("status_events seqs %v, want 1-3", got)
	}
	res = write(t, s, writertest.Updates(11, 2, 2))
	if res.Applied != 2 || res.Cursor != 12 {
		t.Errorf("result %+v, want 2 applied, cursor 12", res)
	}
}

// A loss inside one flush starts when the event before it was observed,
// although that event's row is written in the same transaction (queued
// with the flush's other statements when it is not sent by COPY).
func TestLostSeqsWithinAFlush(t *testing.T) {
	for _, n := range []int{2, 20} { // by insertEvents, by COPY
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s, _ := open(t)
			evs := append(writertest.Updates(1, n, 2), writertest.Updates(uint64(n+3), 1, 2)...)
			if res := write(t, s, evs); res.Lost != 2 {
				t.Fatalf("result %+v, want 2 lost", res)
			}
			type gap struct {
				First, Last int64
				Start       time.Time
			}
			got := query[gap](t, s, `SELECT first_seq, last_seq, coalesce(started_at, 'epoch') FROM kickmon.coverage_gaps`)
			want := []gap{{int64(n + 1), int64(n + 2), evs[n-1].GetObservedAt().AsTime()}}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("coverage_gaps (-want +got):\n%s", d)
			}
		})
	}
}

func TestCoverageAcrossFlushes(t *testing.T) {
	s, _ := open(t)
	st := writertest.Streamer(5, "five")
	cov := func(seq uint64, blind bool) *kickmonv1.Event {
		e := writertest.Event(kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, st, kickmonv1.Source_SOURCE_COLLECTOR, time.Duration(seq)*time.Minute)
		e.Seq, e.Coverage = seq, &kickmonv1.Coverage{Source: kickmonv1.Source_SOURCE_WEBHOOK, Blind: blind, Reason: "subscription dropped"}
		return e
	}
	for _, e := range []*kickmonv1.Event{cov(1, true), cov(2, true), cov(3, false), cov(4, false), cov(5, true)} {
		write(t, s, []*kickmonv1.Event{e})
	}
	type gap struct{ Opened, Closed *int64 }
	got := query[gap](t, s, `SELECT opened_seq, closed_seq FROM kickmon.coverage_gaps ORDER BY id`)
	one, three, five := int64(1), int64(3), int64(5)
	if d := cmp.Diff([]gap{{&one, &three}, {&five, nil}}, got); d != "" {
		t.Errorf("coverage_gaps (-want +got):\n%s", d)
	}
}

// listen LISTENs on channel on a connection of its own and returns a
// function that waits (10 s at most) for the next n notifications' payloads.
func listen(t *testing.T, url, channel string) func(n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		t.Fatal(err)
	}
	return func(n int) []string {
		t.Helper()
		var got []string
		for len(got) < n {
			m, err := conn.WaitForNotification(ctx)
			if err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			got = append(got, m.Payload)
		}
		return got
	}
}

func TestNotifyAfterCommit(t *testing.T) {
	s, url := open(t)
	next := listen(t, url, store.NotifyChannel)
	write(t, s, writertest.Updates(1, 3, 2))
	write(t, s, writertest.Updates(4, 2, 2))
	got := next(2)
	if d := cmp.Diff([]string{"1-3", "4-5"}, got); d != "" {
		t.Errorf("notifications (-want +got):\n%s", d)
	}
}

// The binary COPY stream gives exactly the rows the insert (used when the
// cursor was rewound) gives.
func TestCopyMatchesInsert(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	evs := writertest.Number(1, writertest.Scenario())
	odd := writertest.Updates(uint64(len(evs)+1), 1, 1)[0]
	odd.KickTime = nil
	odd.ObservedAt.Seconds, odd.ObservedAt.Nanos = -1, 999_999_999 // before 1970, sub-microsecond
	odd.Streamer.Title = "tïtle \"quoted\" \\ \t"
	evs = append(evs, odd)
	dump := func() string {
		t.Helper()
		type row struct{ JSON string }
		got := query[row](t, s, `SELECT (to_jsonb(e) - 'stored_at')::text FROM kickmon.status_events e ORDER BY seq`)
		var b strings.Builder
		for _, r := range got {
			b.WriteString(r.JSON + "\n")
		}
		return b.String()
	}
	for _, e := range evs { // the flush does this in its transaction
		if _, err := s.Pool().Exec(ctx, `SELECT kickmon.status_events_partition($1)`, e.GetObservedAt().AsTime()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, store.InsertEvents, store.EncodeEvents(evs)...); err != nil {
		t.Fatal(err)
	}
	want := dump()
	if _, err := s.Pool().Exec(ctx, `TRUNCATE kickmon.status_events`); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(store.EncodeEventsCopy(evs)), store.CopyEvents)
	conn.Release()
	if err != nil || tag.RowsAffected() != int64(len(evs)) {
		t.Fatalf("COPY: %v, %d rows; want %d", err, tag.RowsAffected(), len(evs))
	}
	if d := cmp.Diff(want, dump()); d != "" {
		t.Errorf("COPY rows differ from INSERT rows (-insert +copy):\n%s", d)
	}
}

// A partition dropped behind the writer's back (its cache says it exists)
// makes the flush fail, not quarantine the event: the retry creates it.
func TestDroppedPartitionIsMadeAgain(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	evs := writertest.Updates(1, 2, 1)
	write(t, s, evs[:1])
	if _, err := s.Pool().Exec(ctx, `DROP TABLE kickmon.`+partitionOf(t, s, evs[0])); err != nil {
		t.Fatal(err)
	}
	res, err := s.Write(ctx, batch.Pending{Events: evs[1:]})
	if err == nil || res.Quarantined != 0 {
		t.Fatalf("Write into a dropped partition = %+v, %v; want an error and nothing quarantined", res, err)
	}
	if res := write(t, s, evs[1:]); res.Applied != 1 {
		t.Errorf("retry = %+v, want 1 applied", res)
	}
}

func partitionOf(t *testing.T, s *store.Store, e *kickmonv1.Event) string {
	t.Helper()
	var name string
	if err := s.Pool().QueryRow(context.Background(), `SELECT kickmon.status_events_partition($1)`, e.GetObservedAt().AsTime()).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// Migrations 002 and 003 over a database of the first schema holding
// events: every row survives, in month partitions, and writing goes on.
func TestMigrationKeepsExistingEvents(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, _, err := store.MigrateTo(ctx, conn, 1); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := conn.Exec(ctx, `
INSERT INTO kickmon.status_events (seq, broadcaster_user_id, kind, source, kick_time, observed_at, session_id, state)
VALUES (1, 7, 'STREAMER_ADDED', 'operator', NULL, '2025-03-31 23:59:59.999999+00', NULL, '{"slug": "a"}'),
       (2, 7, 'STREAM_STARTED', 'poll', '2025-11-01 00:00:00+00', '2025-11-01 00:00:00+00', 's1', '{"slug": "a", "live": true}'),
       (3, 7, 'STREAM_UPDATED', 'pusher', NULL, $1, 's1', '{"slug": "a", "viewers": 3}')`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE kickmon.writer_cursor SET last_seq = 3`); err != nil {
		t.Fatal(err)
	}
	dump := func() string {
		t.Helper()
		var out string
		if err := conn.QueryRow(ctx, `SELECT jsonb_agg(to_jsonb(e) ORDER BY seq)::text FROM kickmon.status_events e`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := dump()
	from, to, err := store.Migrate(ctx, conn)
	if err != nil || from != 1 || to != store.LatestVersion() {
		t.Fatalf("Migrate = %d, %d, %v; want 1, %d", from, to, err, store.LatestVersion())
	}
	if d := cmp.Diff(before, dump()); d != "" {
		t.Errorf("rows changed by the migration (-before +after):\n%s", d)
	}
	var parts []string
	rows, err := conn.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'kickmon.status_events'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if parts, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	next := now.AddDate(0, 0, -now.Day()+1).AddDate(0, 1, 0)
	want := []string{"status_events_2025_03", "status_events_2025_11", "status_events_" + now.Format("2006_01"), "status_events_" + next.Format("2006_01")}
	if d := cmp.Diff(want, parts); d != "" {
		t.Errorf("partitions (-want +got):\n%s", d)
	}
	var cursor, offset int64
	var logID *string
	if err := conn.QueryRow(ctx, `SELECT last_seq, log_id, seq_offset FROM kickmon.writer_cursor`).Scan(&cursor, &logID, &offset); err != nil {
		t.Fatal(err)
	}
	if cursor != 3 || logID != nil || offset != 0 {
		t.Errorf("cursor %d log %v offset %d; want 3, NULL, 0", cursor, logID, offset)
	}
	// The primary key still refuses a replayed seq.
	if _, err := conn.Exec(ctx, `INSERT INTO kickmon.status_events (seq, broadcaster_user_id, kind, source, observed_at, state)
SELECT seq, broadcaster_user_id, kind, source, observed_at, state FROM kickmon.status_events WHERE seq = 2`); err == nil {
		t.Error("a duplicate seq was accepted")
	}
	if err := store.MigrateURL(ctx, db.URL); err != nil { // River's tables, as the writer migrates at start
		t.Fatal(err)
	}
	s, err := store.Open(ctx, db.URL, writertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res := write(t, s, writertest.Updates(4, 2, 1)); res.Applied != 2 || res.Cursor != 5 {
		t.Errorf("write after the migration = %+v, want 2 applied, cursor 5", res)
	}
}

// A stream live across a collector's state loss comes back under a new
// session_id with the same start: one session, re-keyed, nothing
// quarantined.
func TestSessionComesBackUnderANewID(t *testing.T) {
	s, _ := open(t)
	live := func(seq uint64, id string, viewers int64) *kickmonv1.Event {
		st := writertest.Streamer(7, "seven")
		st.State = kickmonv1.LiveState_LIVE_STATE_LIVE
		st.ViewerCount = viewers
		st.Session = &kickmonv1.Session{SessionId: id, StartedAt: writertest.At(time.Minute), PeakViewers: viewers, DetectedBy: kickmonv1.Source_SOURCE_POLL}
		e := writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, st, kickmonv1.Source_SOURCE_POLL, 2*time.Minute)
		e.Seq = seq
		return e
	}
	write(t, s, []*kickmonv1.Event{live(1, "OLD", 10)})
	res := write(t, s, []*kickmonv1.Event{live(3, "NEW", 50)})
	if res.Applied != 1 || res.Quarantined != 0 {
		t.Fatalf("Write = %+v, want 1 applied, none quarantined", res)
	}
	type session struct {
		ID   string
		Peak int64
	}
	got := query[session](t, s, `SELECT session_id, peak_viewers FROM kickmon.stream_sessions`)
	if d := cmp.Diff([]session{{"NEW", 50}}, got); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
}

// The writer's connections run without PostgreSQL's JIT (it compiled the
// confirmation refresh's plans for ~40 ms a statement), unless the
// database URL asks for it.
func TestOpenTurnsJITOff(t *testing.T) {
	s, url := open(t)
	withJIT := url + " jit=on" // a key=value DSN
	if strings.Contains(url, "://") {
		withJIT = url + "?jit=on"
		if strings.Contains(url, "?") {
			withJIT = url + "&jit=on"
		}
	}
	on, err := store.Open(context.Background(), withJIT, writertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(on.Close)
	for _, c := range []struct {
		name string
		s    *store.Store
		want string
	}{{"default", s, "off"}, {"jit=on in the URL", on, "on"}} {
		var got string
		if err := c.s.Pool().QueryRow(context.Background(), "SHOW jit").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: jit = %q, want %q", c.name, got, c.want)
		}
	}
}
