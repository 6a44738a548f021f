package consumer_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/consumer"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"github.com/kickmon/kickmon/writer/pgtest"
)

func TestMain(m *testing.M) {
	os.Exit(writertest.Main(m))
}

// running is a pipeline under test.
type running struct {
	c    *consumer.Consumer
	st   *store.Store
	url  string
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, fake *kickapitest.Server, url string, opts consumer.Options) *running {
	t.Helper()
	log := writertest.Logger(t)
	st, err := store.Open(context.Background(), url, log)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxBackoff = 200 * time.Millisecond
	c := consumer.New(fake.Dial(t), st, log, nil, opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, st: st, url: url, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t); st.Close() })
	return r
}

func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	r.done <- nil // keep later calls from blocking
}

func waitAcked(t *testing.T, fake *kickapitest.Server, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fake.WaitAcked(ctx, seq); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or 30s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reference writes events of logID straight through the store into a
// fresh database and returns its dump.
func reference(t *testing.T, logID string, evs []*kickmonv1.Event) string {
	t.Helper()
	db := writertest.NewDB(t)
	st, err := store.Open(context.Background(), db.URL, writertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.AdoptLog(context.Background(), logID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(context.Background(), batch.Pending{Events: evs}); err != nil {
		t.Fatal(err)
	}
	return writertest.Dump(t, db.URL)
}

func seqsOf(t *testing.T, r *running) []int64 {
	t.Helper()
	rows, err := r.st.Pool().Query(context.Background(), `SELECT seq FROM kickmon.status_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func upTo(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// Events published to the collector land as if written directly, and a
// second writer over the same events (a replay) changes nothing.
func TestEventsLandAndReplayChangesNothing(t *testing.T) {
	fake := kickapitest.NewServer(t)
	evs := writertest.Scenario()
	seqs := fake.Publish(evs...)
	writertest.Number(1, evs)
	want := reference(t, fake.LogID(), evs)

	db := writertest.NewDB(t)
	r := start(t, fake, db.URL, consumer.Options{})
	waitAcked(t, fake, seqs[len(seqs)-1])
	r.shutdown(t)
	if d := cmp.Diff(want, writertest.Dump(t, db.URL)); d != "" {
		t.Fatalf("database (-direct +via collector):\n%s", d)
	}

	// Replay: rewind the cursor and follow the same events again.
	if _, err := r.st.Pool().Exec(context.Background(), `UPDATE kickmon.writer_cursor SET last_seq = 0`); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, fake, db.URL, consumer.Options{})
	eventually(t, "the replay to reach the end", func() bool { return r2.c.Status().Committed == seqs[len(seqs)-1] })
	r2.shutdown(t)
	if d := cmp.Diff(want, writertest.Dump(t, db.URL)); d != "" {
		t.Errorf("replay changed the database (-before +after):\n%s", d)
	}
}

// Under saturation the next batch is encoded while the previous one
// commits; batches still commit in seq order, each exactly once.
func TestPipelinedBatchesCommitInOrder(t *testing.T) {
	fake := kickapitest.NewServer(t)
	evs := writertest.Updates(0, 400, 7)
	seqs := fake.Publish(evs...)
	writertest.Number(1, evs)
	want := reference(t, fake.LogID(), evs)

	db := writertest.NewDB(t)
	r := start(t, fake, db.URL, consumer.Options{BatchSize: 4, MaxBatch: 4})
	waitAcked(t, fake, seqs[len(seqs)-1])
	r.shutdown(t)
	if d := cmp.Diff(want, writertest.Dump(t, db.URL)); d != "" {
		t.Fatalf("database (-one write +pipelined batches of 4):\n%s", d)
	}
}

// The collector crashing and coming back mid-stream loses nothing.
func TestCollectorRestart(t *testing.T) {
	fake := kickapitest.NewServer(t)
	db := writertest.NewDB(t)
	r := start(t, fake, db.URL, consumer.Options{})
	fake.Publish(writertest.Updates(0, 300, 20)...)
	waitAcked(t, fake, 300)
	fake.Stop()
	fake.Publish(writertest.Updates(0, 300, 20)...)
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, fake, 600)
	if d := cmp.Diff(upTo(600), seqsOf(t, r)); d != "" {
		t.Errorf("seqs (-want +got):\n%s", d)
	}
}

// A collector that lost the writer's last ack (killed before it arrived)
// hears it again when the writer subscribes, not only at the next event.
func TestAcksCursorOnSubscribe(t *testing.T) {
	db := writertest.NewDB(t)
	evs := writertest.Updates(0, 50, 5)
	first := kickapitest.NewServer(t)
	r := start(t, first, db.URL, consumer.Options{})
	first.Publish(evs...)
	waitAcked(t, first, 50)
	r.shutdown(t)

	restarted := kickapitest.NewServer(t) // same log, but it never heard the ack
	restarted.Publish(evs...)
	start(t, restarted, db.URL, consumer.Options{})
	waitAcked(t, restarted, 50)
}

// OUT_OF_RANGE from the collector becomes a gap row and the writer resumes
// from the oldest retained event.
func TestOutOfRangeBecomesAGap(t *testing.T) {
	tests := []struct {
		name       string
		publish    int
		dropBefore uint64
		wantGap    [2]int64
	}{
		{"some retained", 10, 6, [2]int64{1, 5}},
		{"nothing retained", 10, 11, [2]int64{1, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := kickapitest.NewServer(t)
			fake.Publish(writertest.Updates(0, tt.publish, 3)...)
			fake.DropBefore(tt.dropBefore)
			db := writertest.NewDB(t)
			r := start(t, fake, db.URL, consumer.Options{})
			eventually(t, "the cursor to pass the loss", func() bool { return r.c.Status().Committed == uint64(tt.publish) })
			var first, last int64
			var uid *int64
			if err := r.st.Pool().QueryRow(context.Background(),
				`SELECT broadcaster_user_id, first_seq, last_seq FROM kickmon.coverage_gaps WHERE source = 'spool'`).Scan(&uid, &first, &last); err != nil {
				t.Fatal(err)
			}
			if uid != nil || [2]int64{first, last} != tt.wantGap {
				t.Errorf("gap user %v seqs %d-%d, want NULL %v", uid, first, last, tt.wantGap)
			}
			if d := cmp.Diff(upTo(tt.publish)[tt.dropBefore-1:], seqsOf(t, r), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("seqs (-want +got):\n%s", d)
			}
			// New events go on being written.
			fake.Publish(writertest.Updates(0, 2, 3)...)
			waitAcked(t, fake, uint64(tt.publish+2))
		})
	}
}

// A bad event is quarantined and the pipeline goes on.
func TestBadEventIsQuarantined(t *testing.T) {
	fake := kickapitest.NewServer(t)
	db := writertest.NewDB(t)
	r := start(t, fake, db.URL, consumer.Options{})
	evs := writertest.Updates(0, 20, 4)
	evs[7].Streamer.Title = "nul\x00byte"
	fake.Publish(evs...)
	waitAcked(t, fake, 20)
	var n int
	if err := r.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM kickmon.quarantine WHERE seq = 8`).Scan(&n); err != nil || n != 1 {
		t.Errorf("quarantine rows for seq 8: %d, %v", n, err)
	}
	if got := len(seqsOf(t, r)); got != 19 {
		t.Errorf("%d status_events, want 19", got)
	}
}

// SIGTERM (a cancelled context) drains: what is buffered is written and
// acknowledged before Run returns.
func TestShutdownDrains(t *testing.T) {
	fake := kickapitest.NewServer(t)
	db := writertest.NewDB(t)
	r := start(t, fake, db.URL, consumer.Options{Interval: time.Hour, BatchSize: 1000})
	fake.Publish(writertest.Updates(0, 7, 3)...)
	eventually(t, "the events to be received", func() bool { return r.c.Status().Received == 7 })
	if got := r.c.Status().Committed; got != 0 {
		t.Fatalf("committed %d before the interval or size trigger", got)
	}
	r.shutdown(t)
	if got := fake.Acked(); got != 7 {
		t.Errorf("acked %d after drain, want 7", got)
	}
	if d := cmp.Diff(upTo(7), seqsOf(t, r)); d != "" {
		t.Errorf("seqs (-want +got):\n%s", d)
	}
}

// PostgreSQL stopped and restarted mid-stream loses nothing; the pipeline
// keeps running, reports the outage, and stays healthy (no restart loop).
func TestDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	cluster := pgtest.NewCluster(t)
	db := cluster.NewDatabase(t, writertest.Template)
	fake := kickapitest.NewServer(t)
	r := start(t, fake, db.URL, consumer.Options{})
	fake.Publish(writertest.Updates(0, 200, 10)...)
	waitAcked(t, fake, 200)

	cluster.Stop()
	fake.Publish(writertest.Updates(0, 300, 10)...)
	eventually(t, "the outage to show in the status", func() bool { return r.c.Status().DBError != "" })
	if err := r.c.Healthy(); err != nil {
		t.Errorf("unhealthy during a database outage: %v", err)
	}
	if fake.Acked() != 200 {
		t.Errorf("acked %d while the database is down, want 200", fake.Acked())
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, fake, 500)
	if s := r.c.Status(); s.DBError != "" || s.Committed != 500 {
		t.Errorf("status after recovery: %+v", s)
	}
	if d := cmp.Diff(upTo(500), seqsOf(t, r)); d != "" {
		t.Errorf("seqs (-want +got):\n%s", d)
	}
}

// gapRow is a coverage_gaps row of source spool.
type gapRow struct {
	First, Last int64
	Reason      string
}

func spoolGaps(t *testing.T, r *running) []gapRow {
	t.Helper()
	rows, err := r.st.Pool().Query(context.Background(),
		`SELECT first_seq, last_seq, reason FROM kickmon.coverage_gaps WHERE source = 'spool' ORDER BY first_seq`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[gapRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func seqRange(first, last int64) []int64 {
	var out []int64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

// A replaced event log (the collector lost its state) is recorded as a gap
// and its events are stored after it: while the writer runs, and when the
// new log has already passed the old cursor by the time the writer comes
// back (the case where seqs would otherwise be skipped silently).
func TestLogReplacedResyncs(t *testing.T) {
	tests := []struct {
		name        string
		whileActive bool // replace the log while the writer follows it
		newEvents   int
	}{
		{"while following", true, 3},
		{"while the writer is down, new log past the old cursor", false, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := kickapitest.NewServer(t)
			db := writertest.NewDB(t)
			fake.Publish(writertest.Updates(0, 5, 2)...)
			r := start(t, fake, db.URL, consumer.Options{})
			waitAcked(t, fake, 5)
			old := fake.LogID()
			if !tt.whileActive {
				r.shutdown(t)
			}
			fake.ReplaceLog("log-2")
			fake.Publish(writertest.Updates(0, tt.newEvents, 2)...)
			if !tt.whileActive {
				r = start(t, fake, db.URL, consumer.Options{})
			}
			waitAcked(t, fake, uint64(tt.newEvents))
			eventually(t, "the new log's events stored", func() bool {
				return r.c.Status().Committed == uint64(6+tt.newEvents)
			})
			want := append(seqRange(1, 5), seqRange(7, int64(6+tt.newEvents))...)
			if d := cmp.Diff(want, seqsOf(t, r)); d != "" {
				t.Errorf("stored seqs (-want +got):\n%s", d)
			}
			gaps := spoolGaps(t, r)
			if len(gaps) != 1 || gaps[0].First != 6 || gaps[0].Last != 6 ||
				!strings.HasPrefix(gaps[0].Reason, store.ReasonLogReplaced) || !strings.Contains(gaps[0].Reason, old) {
				t.Errorf("spool gaps = %+v; want one at seq 6, reason %q… naming %s", gaps, store.ReasonLogReplaced, old)
			}
			pos, err := r.st.Position(context.Background())
			if err != nil || pos != (store.Position{Seq: uint64(6 + tt.newEvents), LogID: "log-2", Offset: 6}) {
				t.Errorf("Position = %+v, %v; want log-2 at offset 6", pos, err)
			}
		})
	}
}

// A cursor from before log ids that is beyond the collector's log (its
// spool was lost during the upgrade) is a log change too, not a wedge.
func TestLegacyCursorBeyondTheLog(t *testing.T) {
	fake := kickapitest.NewServer(t)
	db := writertest.NewDB(t)
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE kickmon.writer_cursor SET last_seq = 100, log_id = NULL`); err != nil {
		t.Fatal(err)
	}
	fake.Publish(writertest.Updates(0, 3, 1)...)
	r := start(t, fake, db.URL, consumer.Options{})
	waitAcked(t, fake, 3)
	eventually(t, "the new log stored", func() bool { return r.c.Status().Committed == 104 })
	if d := cmp.Diff(seqRange(102, 104), seqsOf(t, r)); d != "" {
		t.Errorf("stored seqs (-want +got):\n%s", d)
	}
	if gaps := spoolGaps(t, r); len(gaps) != 1 || gaps[0].First != 101 {
		t.Errorf("spool gaps = %+v, want one at seq 101", gaps)
	}
}

// With KICKMON_ON_LOG_CHANGE=stop the writer stores what it received from
// the old log, then stops with ErrLogChanged and leaves the cursor alone.
func TestLogChangedStop(t *testing.T) {
	fake := kickapitest.NewServer(t)
	db := writertest.NewDB(t)
	fake.Publish(writertest.Updates(0, 4, 2)...)
	log := writertest.Logger(t)
	st, err := store.Open(context.Background(), db.URL, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := consumer.New(fake.Dial(t), st, log, nil, consumer.Options{StopOnLogChange: true, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitAcked(t, fake, 4)
	fake.ReplaceLog("log-2")
	fake.Publish(writertest.Updates(0, 2, 2)...)
	err = <-done
	if !errors.Is(err, consumer.ErrLogChanged) || !strings.Contains(err.Error(), "KICKMON_ON_LOG_CHANGE") {
		t.Fatalf("Run = %v; want ErrLogChanged naming KICKMON_ON_LOG_CHANGE", err)
	}
	pos, err := st.Position(ctx)
	if err != nil || pos.Seq != 4 || pos.LogID != "kickapitest-log-1" {
		t.Errorf("Position = %+v, %v; want seq 4 of the old log", pos, err)
	}
}

// A log with the cursor's id that is behind the cursor (a spool restored
// from a backup) cannot be followed: the writer says why and keeps
// retrying slowly instead of spinning silently.
func TestRewoundLogIsReported(t *testing.T) {
	fake := kickapitest.NewServer(t)
	db := writertest.NewDB(t)
	fake.Publish(writertest.Updates(0, 2, 1)...)
	r := start(t, fake, db.URL, consumer.Options{})
	waitAcked(t, fake, 2)
	r.shutdown(t)
	if _, err := r.st.Pool().Exec(context.Background(), `UPDATE kickmon.writer_cursor SET last_seq = 50`); err != nil {
		t.Fatal(err)
	}
	r = start(t, fake, db.URL, consumer.Options{})
	eventually(t, "the problem reported", func() bool {
		return strings.Contains(r.c.Status().CollectorError, "restored from a backup")
	})
	if gaps := spoolGaps(t, r); len(gaps) != 0 {
		t.Errorf("a rewound log was recorded as gaps %+v", gaps)
	}
}
