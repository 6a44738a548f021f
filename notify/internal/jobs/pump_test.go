package jobs_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kickmon/kickmon/notify/internal/jobs"
	"github.com/kickmon/kickmon/notify/internal/targets"
	"github.com/kickmon/kickmon/writer/pgtest"
)

// newPumpDB returns a migrated database whose outbox holds rows for seqs
// 1..n, and a pool on it.
func newPumpDB(t *testing.T, n int) (*pgtest.DB, *pgxpool.Pool) {
	t.Helper()
	db := pgtest.New(t, riverTemplate)
	ctx := context.Background()
	pool := newPool(t, db.URL)
	if _, err := pool.Exec(ctx, `INSERT INTO `+jobs.OutboxTable+` (seq, changes)
SELECT s, ARRAY[CASE WHEN s % 2 = 0 THEN 'live' ELSE 'offline' END] FROM generate_series(1, $1) s`, n); err != nil {
		t.Fatal(err)
	}
	return db, pool
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newMover is a notifier that is not started: tests call MoveOutbox.
func newMover(t *testing.T, pool *pgxpool.Pool, batch int) *jobs.Notifier {
	t.Helper()
	n, err := jobs.New(pool, jobs.Options{Sender: &targets.Sender{}, Log: slog.New(slog.DiscardHandler), OutboxBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain moves rows until the outbox is empty and returns how many it moved.
func drain(t *testing.T, n *jobs.Notifier) int {
	t.Helper()
	total := 0
	for {
		moved, err := n.MoveOutbox(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if moved == 0 {
			return total
		}
		total += moved
	}
}

// checkMoved fails unless the queue holds exactly one fan-out job per seq
// 1..n, with the row's changes, and the outbox is empty.
func checkMoved(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT (args->>'seq')::bigint, count(*), min(args->'changes'->>0), min(queue)
FROM `+jobs.Schema+`.river_job WHERE kind = $1 GROUP BY 1 ORDER BY 1`, jobs.EventKind)
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		Seq, Count    int64
		Change, Queue string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[job])
	if err != nil {
		t.Fatal(err)
	}
	var want []job
	for s := int64(1); s <= int64(n); s++ {
		want = append(want, job{s, 1, map[bool]string{true: "live", false: "offline"}[s%2 == 0], jobs.EventsQueue})
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("fan-out jobs by seq (-want +got):\n%s", d)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+jobs.OutboxTable).Scan(&left); err != nil || left != 0 {
		t.Errorf("outbox rows left: %d (%v)", left, err)
	}
}

// A move that dies before any of its steps (the process killed, the
// connection lost) leaves its rows in the outbox; the next moves make
// them jobs, each exactly once.
func TestMoveOutboxDiesBeforeEveryStep(t *testing.T) {
	const rows, batch = 25, 10
	for _, step := range []string{"take", "enqueue", "commit"} {
		t.Run("before "+step, func(t *testing.T) {
			_, pool := newPumpDB(t, rows)
			n := newMover(t, pool, batch)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			jobs.SetBeforeStep(n, func(_ context.Context, name string) {
				if name == step {
					cancel()
				}
			})
			if moved, err := n.MoveOutbox(ctx); err == nil {
				t.Fatalf("a move cancelled before %s moved %d rows without an error", step, moved)
			}
			jobs.SetBeforeStep(n, nil)
			if got := drain(t, n); got != rows {
				t.Errorf("the next moves moved %d rows, want %d", got, rows)
			}
			checkMoved(t, pool, rows)
		})
	}
}

// Two kicknotify processes moving the same outbox take disjoint rows: one
// holding rows does not stop the other (SKIP LOCKED), the rows they moved
// add up to the outbox, and each is one job.
func TestMoveOutboxTwoPumpsRace(t *testing.T) {
	const rows, batch = 2000, 50
	db, pool := newPumpDB(t, rows)
	a, b := newMover(t, pool, batch), newMover(t, newPool(t, db.URL), batch)
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	jobs.SetBeforeStep(a, func(_ context.Context, name string) {
		if name == "enqueue" {
			once.Do(func() { close(paused); <-resume })
		}
	})
	var movedA int
	var wg sync.WaitGroup
	wg.Go(func() { movedA = drain(t, a) })
	<-paused // a holds seqs 1-50
	// b must not wait for a's rows: a hang would be that.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	moved, err := b.MoveOutbox(ctx)
	cancel()
	if err != nil || moved != batch {
		t.Errorf("while the other pump holds rows: moved %d, %v; want %d", moved, err, batch)
	}
	close(resume)
	movedB := moved + drain(t, b)
	wg.Wait()
	if movedA+movedB != rows {
		t.Errorf("the pumps moved %d + %d rows, want %d in all", movedA, movedB, rows)
	}
	checkMoved(t, pool, rows)
}

// The status's events to fan out count the outbox's rows as well as the
// fan-out jobs: moving rows into the queue does not change it. Without
// the table (a writer from before it) nothing waits there.
func TestStatusCountsTheOutbox(t *testing.T) {
	ctx := context.Background()
	_, pool := newPumpDB(t, 5)
	n := newMover(t, pool, 2)
	check := func(wantPending, wantRows int64) {
		t.Helper()
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows, oldest, err := n.OutboxBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.GetEventsPending() != wantPending || st.GetOldestPendingAt() == nil || rows != wantRows || (rows > 0) == oldest.IsZero() {
			t.Errorf("events pending %d (oldest %v), outbox %d rows (oldest %v); want %d pending, %d rows",
				st.GetEventsPending(), st.GetOldestPendingAt(), rows, oldest, wantPending, wantRows)
		}
	}
	check(5, 5)
	if moved, err := n.MoveOutbox(ctx); err != nil || moved != 2 {
		t.Fatalf("MoveOutbox = %d, %v; want 2", moved, err)
	}
	check(5, 3)
	if _, err := pool.Exec(ctx, `DROP TABLE `+jobs.OutboxTable); err != nil {
		t.Fatal(err)
	}
	check(2, 0)
}

// Alive is what the watchdog and /healthz add to the database ping: a
// started notifier is alive; one whose pump stopped coming round for
// PumpStale, or whose loops have stopped, is not.
func TestAlive(t *testing.T) {
	_, pool := newPumpDB(t, 0)
	n := newMover(t, pool, 10)
	if err := n.Alive(time.Now()); err == nil {
		t.Error("Alive before Start: nil, want an error")
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			n.Stop(time.Second)
		}
	})
	now := time.Now()
	if err := n.Alive(now); err != nil {
		t.Errorf("Alive just after Start: %v", err)
	}
	err := n.Alive(now.Add(jobs.PumpStale + time.Minute))
	if err == nil || !strings.Contains(err.Error(), "has not come round") {
		t.Errorf("Alive with the pump's last round %s ago: %v, want a wedged pump", jobs.PumpStale+time.Minute, err)
	}
	n.Stop(time.Second)
	stopped = true
	if err := n.Alive(time.Now()); err == nil {
		t.Error("Alive after Stop: nil, want an error")
	}
}
