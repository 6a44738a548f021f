package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	poll   = kickmonv1.Source_SOURCE_POLL
	pusher = kickmonv1.Source_SOURCE_PUSHER
)

// confirmedStreamer is alpha (101), confirmed at confirmed, by poll at
// pollAt and by pusher at pusherAt (nil: unset).
func confirmedStreamer(confirmed, pollAt, pusherAt *timestamppb.Timestamp) *kickmonv1.Streamer {
	st := writertest.Streamer(101, "alpha")
	st.LastConfirmedAt = confirmed
	st.Coverage = []*kickmonv1.Coverage{
		{Source: poll, Since: writertest.At(0), LastConfirmedAt: pollAt},
		{Source: pusher, Blind: true, Reason: "no channel id", Since: writertest.At(0), LastConfirmedAt: pusherAt},
	}
	return st
}

// confirmation is what a refresh may change in alpha's row, and what it
// must not.
type confirmation struct {
	Confirmed *time.Time
	Poll      *string // coverage's poll entry's last_confirmed_at, as stored
	Pusher    *string
	Seq       int64
	Updated   time.Time
	Title     string
	Blind     bool
}

func alphaRow(t *testing.T, s *store.Store) []confirmation {
	t.Helper()
	rows := query[confirmation](t, s, `SELECT last_confirmed_at, coverage->0->>'last_confirmed_at', coverage->1->>'last_confirmed_at',
    last_event_seq, updated_at, title, coalesce((coverage->1->>'blind')::boolean, false) FROM kickmon.streamers WHERE broadcaster_user_id = 101`)
	for i := range rows {
		if rows[i].Confirmed != nil {
			u := rows[i].Confirmed.UTC()
			rows[i].Confirmed = &u
		}
		rows[i].Updated = rows[i].Updated.UTC()
	}
	return rows
}

func ptr[T any](v T) *T { return &v }

func TestRefreshConfirmed(t *testing.T) {
	at := func(d time.Duration) *time.Time { return ptr(writertest.T0.Add(d)) }
	seeded := confirmation{Confirmed: at(time.Minute), Poll: ptr("2026-05-01T18:01:00Z"), Pusher: ptr("2026-05-01T18:00:30Z"),
		Seq: 1, Updated: writertest.T0.Add(500 * time.Millisecond), Blind: true}
	with := func(f func(*confirmation)) []confirmation {
		c := seeded
		f(&c)
		return []confirmation{c}
	}
	tests := []struct {
		name     string
		seed     *kickmonv1.Streamer // alpha's event-written state (seq 1); nil: no row
		asOf     uint64
		list     []*kickmonv1.Streamer
		want     []confirmation
		wantRows int64
		behind   bool
	}{
		{
			name: "times move forward, nothing else changes",
			seed: confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf: 1,
			list: []*kickmonv1.Streamer{func() *kickmonv1.Streamer {
				st := confirmedStreamer(writertest.At(5*time.Minute), writertest.At(5*time.Minute), writertest.At(4*time.Minute+123456789*time.Nanosecond))
				st.Title = "not written: titles come from events"
				st.Coverage[1].Blind = false
				return st
			}()},
			want: with(func(c *confirmation) {
				c.Confirmed, c.Poll, c.Pusher = at(5*time.Minute), ptr("2026-05-01T18:05:00Z"), ptr("2026-05-01T18:04:00.123456789Z")
			}),
			wantRows: 1,
		},
		{
			name:     "older times never move a row backwards",
			seed:     confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf:     1,
			list:     []*kickmonv1.Streamer{confirmedStreamer(writertest.At(10*time.Second), writertest.At(10*time.Second), writertest.At(10*time.Second))},
			want:     []confirmation{seeded},
			wantRows: 0,
		},
		{
			name:     "each time on its own: a newer source time with an older streamer time",
			seed:     confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf:     1,
			list:     []*kickmonv1.Streamer{confirmedStreamer(writertest.At(10*time.Second), nil, writertest.At(2*time.Minute))},
			want:     with(func(c *confirmation) { c.Pusher = ptr("2026-05-01T18:02:00Z") }),
			wantRows: 1,
		},
		{
			name:     "an unset time is set",
			seed:     confirmedStreamer(nil, nil, nil),
			asOf:     1,
			list:     []*kickmonv1.Streamer{confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second))},
			want:     []confirmation{seeded},
			wantRows: 1,
		},
		{
			name: "invalid times in the list are ignored",
			seed: confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf: 1,
			list: []*kickmonv1.Streamer{confirmedStreamer(&timestamppb.Timestamp{Seconds: 1 << 50},
				&timestamppb.Timestamp{Seconds: -1 << 50}, writertest.At(time.Hour))},
			want:     with(func(c *confirmation) { c.Pusher = ptr("2026-05-01T19:00:00Z") }),
			wantRows: 1,
		},
		{
			name: "unknown streamers are not inserted",
			seed: confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf: 1,
			list: []*kickmonv1.Streamer{
				writertest.Streamer(202, "bravo"),
				confirmedStreamer(writertest.At(2*time.Minute), nil, nil),
				{BroadcasterUserId: 303, Slug: "charlie", LastConfirmedAt: writertest.At(time.Hour)},
			},
			want:     with(func(c *confirmation) { c.Confirmed = at(2 * time.Minute) }),
			wantRows: 1,
		},
		{
			name:     "no rows at all",
			list:     []*kickmonv1.Streamer{confirmedStreamer(writertest.At(time.Hour), writertest.At(time.Hour), writertest.At(time.Hour))},
			want:     []confirmation{},
			wantRows: 0,
		},
		{
			name:     "the database behind the list: nothing written",
			seed:     confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf:     2,
			list:     []*kickmonv1.Streamer{confirmedStreamer(writertest.At(time.Hour), writertest.At(time.Hour), writertest.At(time.Hour))},
			want:     []confirmation{seeded},
			wantRows: 0,
			behind:   true,
		},
		{
			name:     "a row reflecting a newer event than the list is left to events",
			seed:     confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second)),
			asOf:     0,
			list:     []*kickmonv1.Streamer{confirmedStreamer(writertest.At(time.Hour), writertest.At(time.Hour), writertest.At(time.Hour))},
			want:     []confirmation{seeded},
			wantRows: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := open(t)
			if tt.seed != nil {
				write(t, s, writertest.Number(1, []*kickmonv1.Event{
					writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, tt.seed, kickmonv1.Source_SOURCE_OPERATOR, 0),
				}))
			}
			list := make([]*kickmonv1.Streamer, len(tt.list))
			for i, st := range tt.list {
				list[i] = proto.Clone(st).(*kickmonv1.Streamer)
			}
			res, err := s.RefreshConfirmed(context.Background(), tt.asOf, list)
			if err != nil {
				t.Fatal(err)
			}
			if want := (store.Confirmed{Rows: tt.wantRows, Cursor: res.Cursor, Behind: tt.behind}); res != want {
				t.Errorf("RefreshConfirmed = %+v, want %+v", res, want)
			}
			if d := cmp.Diff(tt.want, alphaRow(t, s)); d != "" {
				t.Errorf("alpha (-want +got):\n%s", d)
			}
			if n := query[struct{ N int64 }](t, s, `SELECT count(*) FROM kickmon.streamers`)[0].N; n != int64(len(tt.want)) {
				t.Errorf("%d streamers rows, want %d (the refresh never inserts)", n, len(tt.want))
			}
			// Idempotent: the same list again moves nothing.
			if res, err := s.RefreshConfirmed(context.Background(), tt.asOf, list); err != nil || res.Rows != 0 {
				t.Errorf("second RefreshConfirmed = %+v, %v; want 0 rows", res, err)
			}
		})
	}
}

// A later event still writes its own state, coverage included: the
// refresh leaves nothing behind that an event cannot overwrite.
func TestEventAfterRefreshWins(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	added := confirmedStreamer(writertest.At(time.Minute), writertest.At(time.Minute), writertest.At(30*time.Second))
	write(t, s, writertest.Number(1, []*kickmonv1.Event{
		writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, added, kickmonv1.Source_SOURCE_OPERATOR, 0),
	}))
	if _, err := s.RefreshConfirmed(ctx, 1, []*kickmonv1.Streamer{
		confirmedStreamer(writertest.At(5*time.Minute), writertest.At(5*time.Minute), writertest.At(5*time.Minute)),
	}); err != nil {
		t.Fatal(err)
	}
	live := confirmedStreamer(writertest.At(6*time.Minute), writertest.At(6*time.Minute), writertest.At(5*time.Minute))
	live.Title = "now live"
	live.Coverage[1].Blind = false
	write(t, s, writertest.Number(2, []*kickmonv1.Event{
		writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, live, kickmonv1.Source_SOURCE_POLL, 6*time.Minute),
	}))
	want := []confirmation{{Confirmed: ptr(writertest.T0.Add(6 * time.Minute)), Poll: ptr("2026-05-01T18:06:00Z"), Pusher: ptr("2026-05-01T18:05:00Z"),
		Seq: 2, Updated: writertest.T0.Add(6*time.Minute + 500*time.Millisecond), Title: "now live"}}
	if d := cmp.Diff(want, alphaRow(t, s)); d != "" {
		t.Errorf("alpha (-want +got):\n%s", d)
	}
}

// A row a flush holds locked is skipped, not waited for: the refresh
// never holds the writer up or deadlocks with it.
func TestRefreshSkipsLockedRows(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	bravo := writertest.Streamer(202, "bravo")
	write(t, s, writertest.Number(1, []*kickmonv1.Event{
		writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, confirmedStreamer(writertest.At(time.Minute), nil, nil), kickmonv1.Source_SOURCE_OPERATOR, 0),
		writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, bravo, kickmonv1.Source_SOURCE_OPERATOR, 0),
	}))
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT FROM kickmon.streamers WHERE broadcaster_user_id = 101 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	later := writertest.At(time.Hour)
	list := []*kickmonv1.Streamer{confirmedStreamer(later, nil, nil), writertest.Streamer(202, "bravo")}
	list[1].LastConfirmedAt = later
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := s.RefreshConfirmed(rctx, 2, list)
	if err != nil || res.Rows != 1 {
		t.Fatalf("RefreshConfirmed with alpha locked = %+v, %v; want 1 row (bravo)", res, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := s.RefreshConfirmed(ctx, 2, list); err != nil || res.Rows != 1 {
		t.Fatalf("RefreshConfirmed after the lock = %+v, %v; want 1 row (alpha)", res, err)
	}
}

// BenchmarkRefreshConfirmed measures one refresh of n streamers, each with
// two coverage entries, whose times all move forward (the worst case: every
// row rewritten; a refresh with nothing new only reads).
func BenchmarkRefreshConfirmed(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("streamers=%d", n), func(b *testing.B) {
			db := writertest.NewDB(b)
			s, err := store.Open(context.Background(), db.URL, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			list := make([]*kickmonv1.Streamer, n)
			evs := make([]*kickmonv1.Event, n)
			for i := range n {
				st := confirmedStreamer(writertest.At(0), writertest.At(0), writertest.At(0))
				st.BroadcasterUserId, st.Slug = int64(i+1), fmt.Sprintf("s%d", i+1)
				list[i] = st
				evs[i] = writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, st, kickmonv1.Source_SOURCE_OPERATOR, 0)
			}
			if _, err := s.Write(context.Background(), batch.Pending{Events: writertest.Number(1, evs)}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				at := writertest.At(time.Duration(i+1) * time.Second)
				for _, st := range list {
					st.LastConfirmedAt, st.Coverage[0].LastConfirmedAt, st.Coverage[1].LastConfirmedAt = at, at, at
				}
				b.StartTimer()
				res, err := s.RefreshConfirmed(context.Background(), uint64(n), list)
				if err != nil || res.Rows != int64(n) {
					b.Fatalf("RefreshConfirmed = %+v, %v; want %d rows", res, err, n)
				}
			}
		})
	}
}

// After the collector's log was replaced, the list's seq is the new log's:
// the refresh compares it with the stored seqs shifted by the offset.
func TestRefreshConfirmedAfterLogChange(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if _, err := s.AdoptLog(ctx, "log-a"); err != nil {
		t.Fatal(err)
	}
	write(t, s, writertest.Updates(1, 3, 1))
	pos, err := s.SwitchLog(ctx, "log-a", "log-b")
	if err != nil || pos.Offset != 4 {
		t.Fatalf("SwitchLog = %+v, %v; want offset 4", pos, err)
	}
	write(t, s, writertest.Updates(5, 1, 1)) // the new log's seq 1
	st := writertest.Streamer(1, "s1")
	st.LastConfirmedAt = writertest.At(time.Hour)
	res, err := s.RefreshConfirmed(ctx, 1, []*kickmonv1.Streamer{st})
	if err != nil || res.Rows != 1 || res.Behind || res.Cursor != 1 {
		t.Fatalf("RefreshConfirmed(as of the new log's seq 1) = %+v, %v; want 1 row, cursor 1, not behind", res, err)
	}
	if res, err := s.RefreshConfirmed(ctx, 2, []*kickmonv1.Streamer{st}); err != nil || !res.Behind {
		t.Errorf("RefreshConfirmed(as of seq 2, not stored yet) = %+v, %v; want behind", res, err)
	}
}
