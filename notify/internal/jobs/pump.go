package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/kickmon/kickmon/notify/internal/logkeys"
	"github.com/kickmon/kickmon/proto/backoff"
	"github.com/riverqueue/river"
)

// The outbox contract with kickwriter (writer/internal/store/outbox.go):
// the writer inserts a row per notable event in the transaction that
// stores it, and NOTIFYs OutboxChannel when it did.
const (
	OutboxTable   = "kickmon.notify_outbox"
	OutboxChannel = "kickmon_outbox"
)

// Defaults of the pump (Options.OutboxBatch, Options.OutboxPoll).
const (
	DefaultOutboxBatch = 1000
	// DefaultOutboxPoll is how often the pump looks without being woken:
	// the fallback for a NOTIFY missed while its connection was down.
	DefaultOutboxPoll = time.Second
)

// InsertOpts puts an event's job on the events queue, unique per seq (a
// cursor rewound by hand makes the writer record an event again).
func (EventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: EventsQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// pump moves outbox rows into River's queue until ctx ends: woken by the
// writer's NOTIFY, polling every OutboxPoll besides; on errors it backs
// off and starts again (a missing table is an older writer's schema).
func (n *Notifier) pump(ctx context.Context) {
	policy := backoff.For(backoff.Transient, n.outboxPoll)
	for attempt := 0; ; attempt++ {
		n.beat()
		start := time.Now()
		err := n.listenAndMove(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			attempt = 0 // it worked for a while
		}
		wait := policy.Wait(attempt)
		n.log.Warn("outbox pump failed; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// listenAndMove LISTENs on its own connection (a pooled one would carry
// the LISTEN to its next user) and moves rows whenever woken or polled.
func (n *Notifier) listenAndMove(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, n.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect to listen on %s: %w", OutboxChannel, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, "LISTEN "+OutboxChannel); err != nil {
		return fmt.Errorf("listen on %s: %w", OutboxChannel, err)
	}
	for {
		n.beat()
		for { // until the outbox is empty
			moved, err := n.MoveOutbox(ctx)
			if err != nil {
				return err
			}
			if moved < n.outboxBatch {
				break
			}
		}
		wctx, cancel := context.WithTimeout(ctx, n.outboxPoll)
		err := conn.PgConn().WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !pgconn.Timeout(err):
			return fmt.Errorf("wait for %s: %w", OutboxChannel, err)
		}
	}
}

// MoveOutbox moves up to the batch size of the oldest outbox rows into
// River's queue in one transaction, which deletes them and inserts their
// jobs: whatever dies, a row becomes a job exactly once. Rows another
// kicknotify is moving are skipped (SKIP LOCKED), not waited for nor
// taken twice. It returns how many rows it moved.
func (n *Notifier) MoveOutbox(ctx context.Context) (int, error) {
	var moved int
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		n.hook(ctx, "take")
		rows, err := tx.Query(ctx, `DELETE FROM `+OutboxTable+` WHERE seq IN (
    SELECT seq FROM `+OutboxTable+` ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING seq, changes`, n.outboxBatch)
		if err != nil {
			return fmt.Errorf("take outbox rows: %w", err)
		}
		type row struct {
			Seq     int64
			Changes []string
		}
		taken, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return fmt.Errorf("take outbox rows: %w", err)
		}
		if len(taken) == 0 {
			return nil
		}
		// In seq order: the events queue is worked in job order, and a
		// start looks for the notification before it.
		slices.SortFunc(taken, func(a, b row) int { return cmp.Compare(a.Seq, b.Seq) })
		params := make([]river.InsertManyParams, len(taken))
		for i, r := range taken {
			params[i] = river.InsertManyParams{Args: EventArgs{Seq: uint64(r.Seq), Changes: r.Changes}}
		}
		n.hook(ctx, "enqueue")
		res, err := n.client.InsertManyTx(ctx, tx, params)
		if err != nil {
			return fmt.Errorf("enqueue %d events (seq %d-%d): %w", len(taken), taken[0].Seq, taken[len(taken)-1].Seq, err)
		}
		for i, r := range res {
			if r.UniqueSkippedAsDuplicate {
				n.log.Info("outbox row already had its job (the writer's cursor was rewound?); not enqueued again",
					logkeys.Seq, taken[i].Seq)
			}
		}
		n.hook(ctx, "commit")
		moved = len(taken)
		return nil
	})
	if err != nil {
		return 0, err
	}
	n.m.OutboxMoved(moved)
	return moved, nil
}

func (n *Notifier) hook(ctx context.Context, name string) {
	if n.beforeStmt != nil {
		n.beforeStmt(ctx, name)
	}
}

// OutboxBacklog is the outbox's rows and the oldest one's enqueued time
// (zero when empty). A database whose writer predates the outbox has no
// table: nothing waits there.
func (n *Notifier) OutboxBacklog(ctx context.Context) (rows int64, oldest time.Time, err error) {
	var at *time.Time
	err = n.pool.QueryRow(ctx, `SELECT count(*), min(enqueued_at) FROM `+OutboxTable).Scan(&rows, &at)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read the outbox's backlog: %w", err)
	}
	if at != nil {
		oldest = *at
	}
	return rows, oldest, nil
}

// PumpStale is how long the pump's loop may go without coming round before
// Alive calls it wedged: it comes round at least every OutboxPoll when
// working, and every backoff wait (at most backoff.MinTransientMax) when not.
const PumpStale = 2 * time.Minute

func (n *Notifier) beat() { n.pumpBeat.Store(time.Now().UnixNano()) }

// Alive says whether the notifier is still working, for the watchdog and
// /healthz: River's client has not stopped on its own and the outbox pump
// came round within PumpStale of now. A database that is down is the
// caller's check (a ping); this one finds loops that are stuck or gone.
func (n *Notifier) Alive(now time.Time) error {
	select {
	case <-n.client.Stopped():
		return errors.New("the job queue's client has stopped")
	default:
	}
	if n.pumpDone == nil {
		return errors.New("not started")
	}
	select {
	case <-n.pumpDone:
		return errors.New("the outbox pump has stopped")
	default:
	}
	if last := time.Unix(0, n.pumpBeat.Load()); now.Sub(last) > PumpStale {
		return fmt.Errorf("the outbox pump has not come round for %s (since %s)",
			now.Sub(last).Round(time.Second), last.UTC().Format(time.RFC3339))
	}
	return nil
}
