package confirm_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/confirm"
	"github.com/kickmon/kickmon/writer/internal/metrics"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) {
	os.Exit(writertest.Main(m))
}

// env is a collector (kickapitest), a migrated database and a running
// Refresher.
type env struct {
	fake *kickapitest.Server
	st   *store.Store
	m    *metrics.Metrics
}

// start runs a Refresher until the test ends; the cleanup checks that Run
// returns once its context is cancelled.
func start(t *testing.T, fake *kickapitest.Server) *env {
	t.Helper()
	return startWith(t, fake, confirm.Options{})
}

// startWith is start with options (Interval and MinBackoff are the test's).
func startWith(t *testing.T, fake *kickapitest.Server, opts confirm.Options) *env {
	t.Helper()
	return startOn(t, fake, fake.Dial(t), opts)
}

// startOn is startWith reading the list from conn (fake or a collector in
// front of it).
func startOn(t *testing.T, fake *kickapitest.Server, conn *kickapi.Conn, opts confirm.Options) *env {
	t.Helper()
	log := writertest.Logger(t)
	st, err := store.Open(context.Background(), writertest.NewDB(t).URL, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{fake: fake, st: st, m: metrics.New()}
	opts.Interval, opts.MinBackoff = 20*time.Millisecond, 5*time.Millisecond
	r := confirm.New(conn, st, log, e.m, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
		st.Close()
	})
	return e
}

// publish publishes an event about st on the collector and writes it to
// the database, as the consumer would.
func (e *env) publish(t *testing.T, kind kickmonv1.EventKind, st *kickmonv1.Streamer) {
	t.Helper()
	ev := writertest.Event(kind, st, kickmonv1.Source_SOURCE_POLL, 0)
	ev.Seq = e.fake.Publish(ev)[0]
	if _, err := e.st.Write(context.Background(), batch.Pending{Events: []*kickmonv1.Event{ev}}); err != nil {
		t.Fatal(err)
	}
}

// refreshes counts refreshes with outcome.
func (e *env) refreshes(t *testing.T, outcome string) float64 {
	t.Helper()
	mfs, err := e.m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kickmon_writer_confirm_refreshes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no refreshes with outcome %q", outcome)
	return 0
}

// await waits until two more refreshes with outcome happened (so at least
// one began after the call).
func (e *env) await(t *testing.T, outcome string) {
	t.Helper()
	want := e.refreshes(t, outcome) + 2
	deadline := time.Now().Add(30 * time.Second)
	for e.refreshes(t, outcome) < want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for refreshes with outcome %q", outcome)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// confirmed is each streamers row's user id and last_confirmed_at.
type row struct {
	UID       int64
	Confirmed time.Time
}

func (e *env) rows(t *testing.T) []row {
	t.Helper()
	rs, err := e.st.Pool().Query(context.Background(), `SELECT broadcaster_user_id, last_confirmed_at FROM kickmon.streamers ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		out[i].Confirmed = out[i].Confirmed.UTC()
	}
	return out
}

func streamer(uid int64, slug string, confirmed time.Duration) *kickmonv1.Streamer {
	st := writertest.Streamer(uid, slug)
	st.LastConfirmedAt = writertest.At(confirmed)
	return st
}

// The collector confirms states without events (SetStreamers): the rows
// follow, forward only, and only rows that exist. kickapitest ignores
// confirmations_only and changed_since, as a collector that predates them
// does: whole lists of full states work as they always did.
func TestRefreshFollowsTheCollector(t *testing.T) {
	e := start(t, kickapitest.NewServer(t))
	e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, streamer(101, "alpha", time.Minute))
	e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, streamer(202, "bravo", time.Minute))
	at := func(d time.Duration) time.Time { return writertest.T0.Add(d) }

	steps := []struct {
		name    string
		event   *kickmonv1.Streamer // published and written first, if set
		watched []*kickmonv1.Streamer
		want    []row
	}{
		{
			name:    "confirmations move the rows forward",
			watched: []*kickmonv1.Streamer{streamer(101, "alpha", 5*time.Minute), streamer(202, "bravo", 3*time.Minute)},
			want:    []row{{101, at(5 * time.Minute)}, {202, at(3 * time.Minute)}},
		},
		{
			name:    "older confirmations never move them back",
			watched: []*kickmonv1.Streamer{streamer(101, "alpha", 2*time.Minute), streamer(202, "bravo", 4*time.Minute)},
			want:    []row{{101, at(5 * time.Minute)}, {202, at(4 * time.Minute)}},
		},
		{
			name:    "streamers without a row are not inserted",
			watched: []*kickmonv1.Streamer{streamer(101, "alpha", 6*time.Minute), streamer(303, "charlie", 6*time.Minute)},
			want:    []row{{101, at(6 * time.Minute)}, {202, at(4 * time.Minute)}},
		},
		{
			name:    "a newer event-written time is kept",
			event:   streamer(202, "bravo", 20*time.Minute),
			watched: []*kickmonv1.Streamer{streamer(101, "alpha", 7*time.Minute), streamer(202, "bravo", 10*time.Minute)},
			want:    []row{{101, at(7 * time.Minute)}, {202, at(20 * time.Minute)}},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.event != nil {
				e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, s.event)
			}
			e.fake.SetStreamers(s.watched...)
			e.await(t, metrics.ConfirmOK)
			if d := cmp.Diff(s.want, e.rows(t)); d != "" {
				t.Errorf("streamers (-want +got):\n%s", d)
			}
		})
	}
}

// addFive publishes and writes streamers 101…105 (s0…s4) confirmed at
// T0+1m and returns them as the collector lists them, confirmed at T0+5m.
func (e *env) addFive(t *testing.T) []*kickmonv1.Streamer {
	t.Helper()
	var watched []*kickmonv1.Streamer
	for i := range 5 {
		st := streamer(int64(101+i), fmt.Sprintf("s%d", i), time.Minute)
		e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, st)
		watched = append(watched, streamer(int64(101+i), fmt.Sprintf("s%d", i), 5*time.Minute))
	}
	return watched
}

// all is a row for each of addFive's streamers, confirmed at T0+d.
func all(d time.Duration) []row {
	var out []row
	for i := range 5 {
		out = append(out, row{int64(101 + i), writertest.T0.Add(d)})
	}
	return out
}

// Refreshes go in chunks, and write only the streamers whose confirmation
// times changed since the refresher last wrote them.
func TestRefreshWritesChangesInChunks(t *testing.T) {
	e := startWith(t, kickapitest.NewServer(t), confirm.Options{Chunk: 2})
	watched := e.addFive(t)
	at := func(d time.Duration) time.Time { return writertest.T0.Add(d) }
	e.fake.SetStreamers(watched...)
	e.await(t, metrics.ConfirmOK)
	if d := cmp.Diff(all(5*time.Minute), e.rows(t)); d != "" {
		t.Fatalf("5 streamers in chunks of 2 (-want +got):\n%s", d)
	}
	// Move the rows back behind the refresher's back: an unchanged list
	// does not write them again (it is not sent)…
	if _, err := e.st.Pool().Exec(context.Background(), `UPDATE kickmon.streamers SET last_confirmed_at = $1`, at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.await(t, metrics.ConfirmOK)
	if d := cmp.Diff(all(time.Minute), e.rows(t)); d != "" {
		t.Errorf("unchanged list (-want +got):\n%s", d)
	}
	// …and a changed confirmation is written.
	watched[2] = streamer(103, "s2", 7*time.Minute)
	e.fake.SetStreamers(watched...)
	e.await(t, metrics.ConfirmOK)
	want := all(time.Minute)
	want[2].Confirmed = at(7 * time.Minute)
	if d := cmp.Diff(want, e.rows(t)); d != "" {
		t.Errorf("one changed (-want +got):\n%s", d)
	}
}

// While the database has not applied the events the list reflects, the
// list's confirmations are not written: the row may show an older state.
func TestNothingWrittenWhileTheDatabaseIsBehind(t *testing.T) {
	e := start(t, kickapitest.NewServer(t))
	e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, streamer(101, "alpha", time.Minute))
	live := streamer(101, "alpha", 9*time.Minute)
	live.State = kickmonv1.LiveState_LIVE_STATE_LIVE
	e.fake.Publish(writertest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, live, kickmonv1.Source_SOURCE_POLL, 9*time.Minute)) // not written
	e.await(t, metrics.ConfirmBehind)
	if d := cmp.Diff([]row{{101, writertest.T0.Add(time.Minute)}}, e.rows(t)); d != "" {
		t.Errorf("streamers (-want +got):\n%s", d)
	}
}

// With the collector down, refreshes fail (and back off) without touching
// the database; they resume when it is back.
func TestCollectorDown(t *testing.T) {
	fake := kickapitest.NewServer(t)
	e := start(t, fake)
	e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, streamer(101, "alpha", time.Minute))
	fake.Stop()
	e.await(t, metrics.ConfirmCollector)
	if d := cmp.Diff([]row{{101, writertest.T0.Add(time.Minute)}}, e.rows(t)); d != "" {
		t.Errorf("streamers (-want +got):\n%s", d)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	fake.SetStreamers(&kickmonv1.Streamer{BroadcasterUserId: 101, Slug: "alpha", LastConfirmedAt: timestamppb.New(writertest.T0.Add(time.Hour))})
	e.await(t, metrics.ConfirmOK)
	if d := cmp.Diff([]row{{101, writertest.T0.Add(time.Hour)}}, e.rows(t)); d != "" {
		t.Errorf("streamers (-want +got):\n%s", d)
	}
}
