// Package writertest holds test helpers for the writer's packages: event
// builders covering every event kind, a migrated pgtest template, and a
// dump of the kickmon schema for comparing database states.
package writertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/pgtest"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Template clones test databases from one migrated with the writer's schema.
var Template = pgtest.Template("kickwriter", store.MigrateURL)

// NewDB returns a fresh, migrated database.
func NewDB(t testing.TB) *pgtest.DB {
	t.Helper()
	return pgtest.New(t, Template)
}

// T0 is the scenario's start time.
var T0 = time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)

// At is T0 plus d, as a protobuf timestamp.
func At(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(T0.Add(d)) }

// Streamer is a baseline offline streamer.
func Streamer(uid int64, slug string) *kickmonv1.Streamer {
	return &kickmonv1.Streamer{
		BroadcasterUserId: uid,
		Slug:              slug,
		ChannelId:         uid + 1000,
		State:             kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		AddedAt:           At(0),
		LastConfirmedAt:   At(0),
	}
}

// Event builds an event (seq 0: kickapitest assigns seqs; set Seq for store tests).
func Event(kind kickmonv1.EventKind, st *kickmonv1.Streamer, src kickmonv1.Source, at time.Duration) *kickmonv1.Event {
	return &kickmonv1.Event{
		Kind:       kind,
		Streamer:   proto.Clone(st).(*kickmonv1.Streamer),
		Source:     src,
		KickTime:   At(at),
		ObservedAt: At(at + 500*time.Millisecond),
	}
}

// Scenario is a realistic run touching every event kind for two streamers:
// add, a push-detected start later corrected by the poller (same session
// id), updates, a rename, a coverage gap opened and closed, an end, a
// removal and a re-add. Seqs are 0 (assign with Number or kickapitest).
func Scenario() []*kickmonv1.Event {
	var out []*kickmonv1.Event
	a, b := Streamer(101, "alpha"), Streamer(202, "bravo")
	add := func(k kickmonv1.EventKind, st *kickmonv1.Streamer, src kickmonv1.Source, at time.Duration, mod func(*kickmonv1.Event)) {
		e := Event(k, st, src, at)
		if mod != nil {
			mod(e)
		}
		out = append(out, e)
	}
	const (
		poll     = kickmonv1.Source_SOURCE_POLL
		pusher   = kickmonv1.Source_SOURCE_PUSHER
		operator = kickmonv1.Source_SOURCE_OPERATOR
	)
	add(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, a, operator, 0, nil)
	add(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, b, operator, time.Second, nil)

	sess := &kickmonv1.Session{SessionId: "01J0000000000000000000000A", StartedAt: At(time.Minute), StartedAtProvisional: true,
		Title: "hello", CategoryName: "Just Chatting", DetectedBy: pusher}
	a.State, a.Title, a.CategoryId, a.CategoryName, a.LiveSince, a.Session = kickmonv1.LiveState_LIVE_STATE_LIVE, "hello", 15, "Just Chatting", sess.StartedAt, sess
	add(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, a, pusher, time.Minute, func(e *kickmonv1.Event) { e.Session = proto.Clone(sess).(*kickmonv1.Session) })

	// The poller confirms with Kick's official start time, 3 s earlier.
	sess.StartedAt, sess.StartedAtProvisional, sess.PeakViewers = At(57*time.Second), false, 40
	a.LiveSince, a.ViewerCount = sess.StartedAt, 40
	add(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, a, poll, 70*time.Second, func(e *kickmonv1.Event) { e.Session = proto.Clone(sess).(*kickmonv1.Session) })

	sess.Title, sess.PeakViewers = "hello again", 75
	a.Title, a.ViewerCount = "hello again", 75
	add(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, a, pusher, 2*time.Minute, func(e *kickmonv1.Event) { e.Session = proto.Clone(sess).(*kickmonv1.Session) })

	b.Slug = "bravo2"
	add(kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED, b, poll, 3*time.Minute, func(e *kickmonv1.Event) { e.PreviousSlug = "bravo" })

	blind := &kickmonv1.Coverage{Source: pusher, Blind: true, Reason: "socket down", Since: At(4 * time.Minute)}
	a.Coverage = []*kickmonv1.Coverage{blind}
	add(kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, a, kickmonv1.Source_SOURCE_COLLECTOR, 4*time.Minute, func(e *kickmonv1.Event) { e.Coverage = proto.Clone(blind).(*kickmonv1.Coverage) })
	seeing := &kickmonv1.Coverage{Source: pusher, Since: At(5 * time.Minute)}
	a.Coverage = []*kickmonv1.Coverage{seeing}
	add(kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, a, kickmonv1.Source_SOURCE_COLLECTOR, 5*time.Minute, func(e *kickmonv1.Event) { e.Coverage = proto.Clone(seeing).(*kickmonv1.Coverage) })

	sess.EndedAt = At(6 * time.Minute)
	a.State, a.ViewerCount, a.LiveSince = kickmonv1.LiveState_LIVE_STATE_OFFLINE, 0, nil
	add(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, a, poll, 6*time.Minute, func(e *kickmonv1.Event) { e.Session = proto.Clone(sess).(*kickmonv1.Session) })

	b.Removed = true
	add(kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, b, operator, 7*time.Minute, nil)
	b.Removed = false
	add(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, b, operator, 8*time.Minute, nil)
	b.Removed = true
	add(kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, b, operator, 9*time.Minute, nil)
	return out
}

// Number gives events consecutive seqs from first (in place) and returns them.
func Number(first uint64, evs []*kickmonv1.Event) []*kickmonv1.Event {
	for i, e := range evs {
		e.Seq = first + uint64(i)
	}
	return evs
}

// Updates returns n STREAM_UPDATED events spread over users streamers,
// numbered from first: a steady load for crash and throughput tests.
func Updates(first uint64, n, users int) []*kickmonv1.Event {
	out := make([]*kickmonv1.Event, n)
	for i := range n {
		uid := int64(i%users) + 1
		st := Streamer(uid, fmt.Sprintf("s%d", uid))
		st.State, st.Title, st.ViewerCount, st.CategoryName = kickmonv1.LiveState_LIVE_STATE_LIVE, fmt.Sprintf("title %d", i), int64(i), "Games"
		st.LiveSince = At(0)
		st.Session = &kickmonv1.Session{SessionId: fmt.Sprintf("S%06d", uid), StartedAt: At(0), DetectedBy: kickmonv1.Source_SOURCE_POLL, PeakViewers: int64(i)}
		e := Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, st, kickmonv1.Source_SOURCE_POLL, time.Duration(i)*time.Millisecond)
		e.Seq = first + uint64(i)
		out[i] = e
	}
	return out
}

// tables lists what Dump reads, without columns that record wall-clock
// write times.
var tables = []struct{ name, order, drop string }{
	{"streamers", "broadcaster_user_id", ""},
	{"stream_sessions", "session_id", ""},
	{"status_events", "seq", "stored_at"},
	{"coverage_gaps", "coalesce(opened_seq, first_seq)", "recorded_at' - 'id"}, // ids are consumed by rolled-back transactions
	{"quarantine", "seq", "quarantined_at"},
	{"writer_cursor", "id", "updated_at"},
	{"notify_outbox", "seq", "enqueued_at"}, // commits with the events: part of the state
}

// Dump returns the kickmon schema's rows as JSON lines, for comparing
// database states.
func Dump(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("writertest: connect: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var b strings.Builder
	for _, tb := range tables {
		drop := ""
		if tb.drop != "" {
			drop = " - '" + tb.drop + "'"
		}
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT (to_jsonb(t)%s)::text FROM kickmon.%s t ORDER BY %s`, drop, tb.name, tb.order))
		if err != nil {
			t.Fatalf("writertest: dump %s: %v", tb.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("writertest: dump %s: %v", tb.name, err)
		}
		fmt.Fprintf(&b, "%s:\n", tb.name)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

// Main runs a daemon package's tests on a throwaway PostgreSQL cluster
// (pgtest.Main), then fails the run if goroutines leaked. Use it as
// TestMain: os.Exit(writertest.Main(m)).
func Main(m *testing.M) int {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	return code
}

// Logger returns a JSON logger writing to t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewJSONHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
