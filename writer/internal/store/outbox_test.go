package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
)

type job struct {
	Seq     uint64
	Changes []string
	Slug    string
}

// outbox lists the queued notification jobs by seq, each with the slug of
// the stored event it names (kicknotify reads the event by seq).
func outbox(t *testing.T, s *store.Store) []job {
	t.Helper()
	type row struct {
		Kind, Queue string
		Args        []byte
		Slug        *string
	}
	var out []job
	for _, r := range query[row](t, s, `SELECT j.kind, j.queue, j.args::text::bytea, e.state->>'slug'
FROM `+store.RiverSchema+`.river_job j LEFT JOIN kickmon.status_events e ON e.seq = (j.args->>'seq')::bigint
ORDER BY (j.args->>'seq')::bigint`) {
		if r.Kind != store.OutboxJobKind || r.Queue != store.OutboxQueue {
			t.Errorf("job kind %q queue %q, want %q %q", r.Kind, r.Queue, store.OutboxJobKind, store.OutboxQueue)
		}
		var args store.EventArgs
		dec := json.NewDecoder(bytes.NewReader(r.Args))
		dec.DisallowUnknownFields() // small args: River indexes them
		if err := dec.Decode(&args); err != nil {
			t.Fatalf("job args %s: %v", r.Args, err)
		}
		if r.Slug == nil {
			t.Fatalf("job seq %d: no such event in kickmon.status_events", args.Seq)
		}
		out = append(out, job{args.Seq, args.Changes, *r.Slug})
	}
	return out
}

// The writer enqueues exactly the notable events, with what changed,
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
			write(t, s, evs) // the cursor rewound by hand: River's unique key holds
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

// With the outbox disabled, events are stored and nothing is enqueued.
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
