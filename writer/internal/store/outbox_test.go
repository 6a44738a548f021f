package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"github.com/kickmon/kickmon/writer/pgtest"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

type job struct {
	Seq     uint64
	Changes []string
	Slug    string
}

// outbox lists the notification outbox's rows by seq, each with the slug
// of the stored event it names (kicknotify reads the event by seq).
func outbox(t *testing.T, s *store.Store) []job {
	t.Helper()
	type row struct {
		Seq     int64
		Changes []string
		Slug    *string
	}
	var out []job
	for _, r := range query[row](t, s, `SELECT o.seq, o.changes, e.state->>'slug'
FROM kickmon.notify_outbox o LEFT JOIN kickmon.status_events e ON e.seq = o.seq ORDER BY o.seq`) {
		if r.Slug == nil {
			t.Fatalf("outbox seq %d: no such event in kickmon.status_events", r.Seq)
		}
		out = append(out, job{uint64(r.Seq), r.Changes, *r.Slug})
	}
	return out
}

// The writer records exactly the notable events, with what changed,
// whether the previous title comes from the same batch or from the
// streamers row; replays and a rewound cursor enqueue nothing more.
func TestOutbox(t *testing.T) {
	evs := writertest.Number(1, writertest.Scenario())
	want := []job{
		{3, []string{"live"}, "alpha"},
		{5, []string{"title"}, "alpha"},
		{6, []string{"renamed"}, "bravo2"},
		{9, []string{"offline"}, "alpha"},
	}
	tests := []struct {
		name    string
		batches [][]*kickmonv1.Event
	}{
		{"one batch", [][]*kickmonv1.Event{evs}},
		{"one event per batch", func() (out [][]*kickmonv1.Event) {
			for _, e := range evs {
				out = append(out, []*kickmonv1.Event{e})
			}
			return out
		}()},
		{"split between the update and the title change", [][]*kickmonv1.Event{evs[:4], evs[4:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := open(t)
			for _, b := range tt.batches {
				write(t, s, b)
			}
			if d := cmp.Diff(want, outbox(t, s)); d != "" {
				t.Fatalf("outbox (-want +got):\n%s", d)
			}
			write(t, s, evs) // a replay
			setCursor(t, s, 0)
			write(t, s, evs) // the cursor rewound by hand: the outbox's key holds
			if d := cmp.Diff(want, outbox(t, s)); d != "" {
				t.Errorf("outbox after replays (-want +got):\n%s", d)
			}
		})
	}
}

// A category change while live is notable; viewer counts and changes
// while offline are not.
func TestOutboxCategoryOnlyWhileLive(t *testing.T) {
	s, _ := open(t)
	st := writertest.Streamer(7, "gamma")
	st.State, st.Title, st.CategoryName = kickmonv1.LiveState_LIVE_STATE_LIVE, "t", "Chess"
	st.Session = &kickmonv1.Session{SessionId: "S7", StartedAt: writertest.At(0)}
	evs := []*kickmonv1.Event{writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, st, kickmonv1.Source_SOURCE_POLL, 0)}
	st.ViewerCount = 10
	evs = append(evs, writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, st, kickmonv1.Source_SOURCE_POLL, 1))
	st.CategoryName, st.Title = "Slots", "t2"
	evs = append(evs, writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, st, kickmonv1.Source_SOURCE_POLL, 2))
	st.State, st.Title = kickmonv1.LiveState_LIVE_STATE_OFFLINE, "offline title"
	evs = append(evs, writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, st, kickmonv1.Source_SOURCE_POLL, 3))
	writertest.Number(1, evs)
	write(t, s, evs[:2])
	write(t, s, evs[2:])
	want := []job{{1, []string{"live"}, "gamma"}, {3, []string{"title", "category"}, "gamma"}}
	if d := cmp.Diff(want, outbox(t, s)); d != "" {
		t.Errorf("outbox (-want +got):\n%s", d)
	}
}

// Title changes of one streamer within one flush are each a job, as in
// separate flushes: the outbox does not depend on batching.
func TestOutboxIndependentOfBatching(t *testing.T) {
	st := writertest.Streamer(7, "gamma")
	st.State, st.Title, st.CategoryName = kickmonv1.LiveState_LIVE_STATE_LIVE, "t0", "Chess"
	st.Session = &kickmonv1.Session{SessionId: "S7", StartedAt: writertest.At(0)}
	evs := []*kickmonv1.Event{writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, st, kickmonv1.Source_SOURCE_POLL, 0)}
	update := func(title, category string) {
		st.Title, st.CategoryName = title, category
		evs = append(evs, writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, st, kickmonv1.Source_SOURCE_POLL, 1))
	}
	update("t1", "Chess")
	update("t1", "Slots")
	update("t2", "Slots")
	st.State = kickmonv1.LiveState_LIVE_STATE_OFFLINE
	evs = append(evs, writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, st, kickmonv1.Source_SOURCE_POLL, 2))
	writertest.Number(1, evs)
	want := []job{{1, []string{"live"}, "gamma"}, {2, []string{"title"}, "gamma"}, {3, []string{"category"}, "gamma"},
		{4, []string{"title"}, "gamma"}, {5, []string{"offline"}, "gamma"}}
	for _, size := range []int{1, 2, len(evs)} {
		s, _ := open(t)
		for i := 0; i < len(evs); i += size {
			write(t, s, evs[i:min(i+size, len(evs))])
		}
		if d := cmp.Diff(want, outbox(t, s)); d != "" {
			t.Errorf("flushes of %d: outbox (-want +got):\n%s", size, d)
		}
	}
}

// With the outbox disabled, events are stored and nothing is recorded.
func TestOutboxDisabled(t *testing.T) {
	s, _ := open(t)
	s.DisableOutbox()
	write(t, s, writertest.Number(1, writertest.Scenario()))
	if got := outbox(t, s); len(got) != 0 {
		t.Errorf("outbox = %v, want empty", got)
	}
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM kickmon.status_events`).Scan(&n); err != nil || n != 12 {
		t.Errorf("status_events = %d (%v), want 12", n, err)
	}
}

// A flush that recorded outbox rows wakes kicknotify (NOTIFY on
// store.OutboxChannel, at commit); one that recorded none does not.
func TestOutboxNotifiesOnlyWithRows(t *testing.T) {
	s, url := open(t)
	next := listen(t, url, store.OutboxChannel)
	evs := writertest.Number(1, writertest.Scenario())
	write(t, s, evs[:2]) // streamers added: nothing notable
	// A marker sent after that commit: it must be the first notification.
	if _, err := s.Pool().Exec(context.Background(), `SELECT pg_notify($1, 'marker')`, store.OutboxChannel); err != nil {
		t.Fatal(err)
	}
	write(t, s, evs[2:3]) // a go-live
	got := next(2)
	if d := cmp.Diff([]string{"marker", ""}, got); d != "" {
		t.Errorf("notifications (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]job{{3, []string{"live"}, "alpha"}}, outbox(t, s)); d != "" {
		t.Errorf("outbox (-want +got):\n%s", d)
	}
}

// oldEventArgs is the job writers before migration 004 enqueued.
type oldEventArgs struct {
	Seq     uint64   `json:"seq" river:"unique"`
	Changes []string `json:"changes"`
}

func (oldEventArgs) Kind() string { return "kickmon_event" }

// Migration 004 over a database holding River jobs an older writer
// enqueued leaves them as they are (kicknotify works them), and the
// writer records notable events in the outbox from then on.
func TestOutboxMigrationKeepsPendingJobs(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, _, err := store.MigrateTo(ctx, pool, 3); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateRiver(ctx, pool); err != nil {
		t.Fatal(err)
	}
	old, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: store.RiverSchema})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Insert(ctx, oldEventArgs{Seq: 1, Changes: []string{"live"}},
		&river.InsertOpts{Queue: "events", UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
		t.Fatal(err)
	}
	jobs := func() string {
		t.Helper()
		var out string
		if err := pool.QueryRow(ctx, `SELECT string_agg(kind || ' ' || state || ' ' || args::text, '; ') FROM `+store.RiverSchema+`.river_job`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := jobs()
	s, err := store.Open(ctx, db.URL, writertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if from, to, err := s.Migrate(ctx); err != nil || from != 3 || to != store.LatestVersion() {
		t.Fatalf("Migrate = %d, %d, %v; want 3, %d", from, to, err, store.LatestVersion())
	}
	if after := jobs(); after != before || !strings.Contains(after, "available") {
		t.Errorf("River jobs after the migration: %q, before: %q", after, before)
	}
	write(t, s, writertest.Number(1, writertest.Scenario())[:3])
	if d := cmp.Diff([]job{{3, []string{"live"}, "alpha"}}, outbox(t, s)); d != "" {
		t.Errorf("outbox (-want +got):\n%s", d)
	}
}
