package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kickmon/kickmon/notify/internal/config"
	"github.com/kickmon/kickmon/notify/internal/jobs"
	"github.com/kickmon/kickmon/notify/internal/message"
	"github.com/kickmon/kickmon/notify/internal/targets"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/pgtest"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// riverTemplate has River's tables where kickwriter puts them, and
// kickwriter's own schema (its migration files, applied in order: the
// fan-out reads events from kickmon.status_events).
var riverTemplate = pgtest.Template("kicknotify-river", func(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	files, err := filepath.Glob("../../../writer/internal/store/migrations/*.up.sql")
	if err != nil || len(files) == 0 {
		return fmt.Errorf("kickwriter's migrations not found (%v)", err)
	}
	if _, err := pool.Exec(ctx, `CREATE SCHEMA kickmon`); err != nil {
		return err
	}
	for _, f := range files { // Glob sorts: NNN_ order
		sql, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := pool.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+jobs.Schema); err != nil {
		return err
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: jobs.Schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
})

// sink is a fake target: it records each request's idempotency key and
// kind, and answers with the next scripted status (then 200).
type sink struct {
	mu     sync.Mutex
	script []int
	seen   []string          // key kind, in arrival order
	bodies map[string][]byte // by key
	srv    *httptest.Server
}

func newSink(t *testing.T, script ...int) *sink {
	s := &sink{script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, r.Header.Get(targets.HeaderDelivery)+" "+r.Header.Get(targets.HeaderKind))
		if s.bodies == nil {
			s.bodies = map[string][]byte{}
		}
		s.bodies[r.Header.Get(targets.HeaderDelivery)] = body
		status := http.StatusOK
		if len(s.script) > 0 {
			status, s.script = s.script[0], s.script[1:]
		}
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"message": "You are being rate limited.", "retry_after": 0.2, "global": false}`)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// delivered is the set of distinct "key kind" the sink accepted or saw.
func (s *sink) delivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.seen)
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *sink) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

var t0 = time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)

func event(seq uint64, kind kickmonv1.EventKind, slug, category string, at time.Duration) json.RawMessage {
	sess := &kickmonv1.Session{SessionId: fmt.Sprint("S", seq), StartedAt: timestamppb.New(t0.Add(at))}
	e := &kickmonv1.Event{Seq: seq, Kind: kind, Source: kickmonv1.Source_SOURCE_POLL,
		Streamer: &kickmonv1.Streamer{BroadcasterUserId: int64(len(slug)), Slug: slug, Title: "t", CategoryName: category,
			Session: sess, ThumbnailUrl: "https://img.test/" + slug},
		KickTime:   timestamppb.New(t0.Add(at)),
		ObservedAt: timestamppb.New(t0.Add(at)),
		Session:    sess}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}

// storeEvent stores ev in kickmon.status_events the way kickwriter does
// (the streamer's state as protojson with proto names; the event's session
// is the state's).
func storeEvent(tb testing.TB, ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, ev json.RawMessage) {
	tb.Helper()
	var e kickmonv1.Event
	if err := protojson.Unmarshal(ev, &e); err != nil {
		tb.Fatal(err)
	}
	st, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e.Streamer)
	if err != nil {
		tb.Fatal(err)
	}
	at := e.GetObservedAt().AsTime()
	if _, err := db.Exec(ctx, `SELECT kickmon.status_events_partition($1)`, at); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO kickmon.status_events (seq, broadcaster_user_id, kind, source, kick_time, observed_at, session_id, state)
VALUES ($1, $2, $3, 'poll', $4, $5, $6, $7) ON CONFLICT DO NOTHING`, int64(e.Seq), e.Streamer.BroadcasterUserId, strings.TrimPrefix(e.Kind.String(), "EVENT_KIND_"),
		e.KickTime.AsTime(), at, e.Streamer.GetSession().GetSessionId(), st); err != nil {
		tb.Fatal(err)
	}
}

// record inserts an outbox row as kickwriter does in the transaction that
// stores the event (the event itself: storeEvent); the table's trigger
// wakes the pump at commit.
func record(tb testing.TB, ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, seq uint64, changes ...string) {
	tb.Helper()
	if _, err := db.Exec(ctx, `INSERT INTO `+jobs.OutboxTable+` (seq, changes) VALUES ($1, $2)`, int64(seq), changes); err != nil {
		tb.Fatal(err)
	}
}

func target(t *testing.T, name, typ string, s *sink, mod func(*config.Target)) *config.Target {
	tg := &config.Target{Name: name, Type: typ, URL: s.srv.URL + "/hook", Events: []string{message.Live},
		BackLiveWithin: config.DefaultBackLiveWithin, Templates: message.DefaultTemplates(), Secret: []byte("k")}
	if mod != nil {
		mod(tg)
	}
	return tg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Events recorded as the writer does (and jobs enqueued by older writers)
// are fanned out to the targets whose filters match and delivered once
// per target and event — through a 429 with retry_after and a run of
// 500s, and a duplicate enqueue — and a start soon after the last
// notification is "back live".
func TestFanOutAndDeliver(t *testing.T) {
	db := pgtest.New(t, riverTemplate)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	all, xqcOnly, flaky, slots := newSink(t), newSink(t), newSink(t, 429, 500, 500), newSink(t)
	tgs := []*config.Target{
		target(t, "all", config.Webhook, all, func(tg *config.Target) { tg.Events = []string{message.Live, message.Offline} }),
		target(t, "xqc-only", config.Discord, xqcOnly, func(tg *config.Target) { tg.Streamers = []string{"xqc"}; tg.BackLiveWithin = 0 }),
		target(t, "flaky", config.Slack, flaky, nil),
		target(t, "slots", config.Ntfy, slots, func(tg *config.Target) { tg.Categories = []string{"slots"} }),
	}
	n, err := jobs.New(pool, jobs.Options{Targets: tgs, Sender: &targets.Sender{Client: http.DefaultClient}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}

	// Older writers enqueued River jobs themselves: an insert-only client,
	// unique per seq.
	oldWriter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: jobs.Schema})
	if err != nil {
		t.Fatal(err)
	}
	// The writer stores the event in kickmon.status_events and records
	// its seq in the outbox as kickwriter does; seq 1 is enqueued the way
	// the first writers did (a River job with the whole event in its
	// args), seq 2 as later ones did (a River job with the seq).
	enqueue := func(seq uint64, changes []string, ev json.RawMessage) {
		t.Helper()
		storeEvent(t, ctx, pool, ev)
		args := jobs.EventArgs{Seq: seq, Changes: changes}
		switch seq {
		case 1:
			args.Event = ev
			fallthrough
		case 2:
			if _, err := oldWriter.Insert(ctx, args, nil); err != nil {
				t.Fatal(err)
			}
		default:
			record(t, ctx, pool, seq, changes...)
		}
	}
	const (
		started = kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED
		ended   = kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED
	)
	enqueue(1, []string{"live"}, event(1, started, "xqc", "Just Chatting", 0))
	enqueue(1, []string{"live"}, event(1, started, "xqc", "Just Chatting", 0)) // a replay: River's unique key holds
	enqueue(2, []string{"live"}, event(2, started, "roshtein", "Slots", time.Minute))
	enqueue(3, []string{"offline"}, event(3, ended, "xqc", "Just Chatting", time.Hour))
	enqueue(4, []string{"live"}, event(4, started, "xqc", "Just Chatting", time.Hour+5*time.Minute))
	enqueue(5, []string{"live"}, event(5, started, "roshtein", "Slots", 5*time.Hour)) // long after: live again

	runCtx, cancel := context.WithCancel(ctx)
	if err := n.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); n.Stop(5 * time.Second) })

	want := map[*sink][]string{
		all:     {"all:1 live", "all:2 live", "all:3 offline", "all:4 back_live", "all:5 live"},
		xqcOnly: {"xqc-only:1 live", "xqc-only:4 live"},
		flaky:   {"flaky:1 live", "flaky:2 live", "flaky:4 live", "flaky:5 live"},
		slots:   {"slots:2 live", "slots:5 live"},
	}
	for s, w := range want {
		waitFor(t, fmt.Sprintf("deliveries %v", w), func() bool { return len(s.delivered()) >= len(w) })
	}
	// Let stragglers (a second delivery would be a bug) surface before judging.
	waitFor(t, "the queue to drain", func() bool {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range st.GetTargets() {
			if ts.GetPending()+ts.GetRetrying() > 0 {
				return false
			}
		}
		return st.GetEventsPending() == 0
	})
	for s, w := range want {
		if d := cmp.Diff(w, s.delivered()); d != "" {
			t.Errorf("deliveries (-want +got):\n%s", d)
		}
	}
	// The webhook's body is the event, whether the job carried it (seq 1)
	// or the fan-out read it from kickmon.status_events.
	for seq, kind := range map[uint64]kickmonv1.EventKind{1: started, 3: ended, 4: started} {
		all.mu.Lock()
		body := all.bodies[targets.Key("all", seq)]
		all.mu.Unlock()
		var got, want kickmonv1.Event
		if err := protojson.Unmarshal(body, &got); err != nil {
			t.Fatalf("webhook body of seq %d: %v (%s)", seq, err, body)
		}
		if err := protojson.Unmarshal(event(seq, kind, "xqc", "Just Chatting", map[uint64]time.Duration{1: 0, 3: time.Hour, 4: time.Hour + 5*time.Minute}[seq]), &want); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(&want, &got, protocmp.Transform()); d != "" {
			t.Errorf("webhook body of seq %d (-want +got):\n%s", seq, d)
		}
	}
	// flaky's first delivery went out four times (429, 500, 500, 200) with one key; flaky:2 was never doubled.
	if got := flaky.requests(); got != 4+3 {
		t.Errorf("flaky saw %d requests, want 7 (4 tries of its first delivery, then 3)", got)
	}
	for _, s := range []*sink{all, xqcOnly, slots} {
		if s.requests() != len(s.delivered()) {
			t.Errorf("a healthy target got %d requests for %d deliveries", s.requests(), len(s.delivered()))
		}
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for _, ts := range st.GetTargets() {
		got[ts.GetName()] = [2]int64{ts.GetDelivered(), ts.GetFailed()}
	}
	if d := cmp.Diff(map[string][2]int64{"all": {5, 0}, "xqc-only": {2, 0}, "flaky": {4, 0}, "slots": {2, 0}}, got); d != "" {
		t.Errorf("status delivered/failed (-want +got):\n%s", d)
	}
	if le := st.GetTargets()[2].GetLastError(); !strings.Contains(le, "500") || strings.Contains(le, flaky.srv.URL) {
		t.Errorf("flaky last error = %q, want the 500 without the URL", le)
	}
}

func TestMatch(t *testing.T) {
	ev := func(slug, prev, category string) *kickmonv1.Event {
		return &kickmonv1.Event{Streamer: &kickmonv1.Streamer{Slug: slug, CategoryName: category}, PreviousSlug: prev}
	}
	tests := []struct {
		name    string
		target  config.Target
		changes []string
		ev      *kickmonv1.Event
		want    string
	}{
		{"live to all", config.Target{Events: []string{"live"}}, []string{"live"}, ev("a", "", ""), "live"},
		{"not subscribed", config.Target{Events: []string{"live"}}, []string{"offline"}, ev("a", "", ""), ""},
		{"the first subscribed change", config.Target{Events: []string{"category"}}, []string{"title", "category"}, ev("a", "", ""), "category"},
		{"streamer listed", config.Target{Events: []string{"live"}, Streamers: []string{"xqc"}}, []string{"live"}, ev("xQc", "", ""), "live"},
		{"streamer not listed", config.Target{Events: []string{"live"}, Streamers: []string{"xqc"}}, []string{"live"}, ev("other", "", ""), ""},
		{"renamed from a listed slug", config.Target{Events: []string{"renamed"}, Streamers: []string{"old"}}, []string{"renamed"}, ev("new", "old", ""), "renamed"},
		{"category matches, any case", config.Target{Events: []string{"live"}, Categories: []string{"slots"}}, []string{"live"}, ev("a", "", "Slots"), "live"},
		{"category does not match", config.Target{Events: []string{"live"}, Categories: []string{"slots"}}, []string{"live"}, ev("a", "", "Chess"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jobs.Match(&tt.target, tt.changes, tt.ev)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("Match = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
