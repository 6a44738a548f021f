package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
)

// The collector's event log has an id (migration 002): its seqs mean
// something only within that log. The cursor row keeps the log id it
// belongs to and the offset added to that log's seqs to store them, so
// that status_events.seq stays monotonic and never reused when the
// collector's log is replaced (its spool lost, seqs starting at 1 again).

// Position is the writer's position in the collector's event log.
type Position struct {
	Seq    uint64 // the last applied seq, as stored (the log's seq + Offset)
	LogID  string // the log Seq belongs to; "" until the writer saw a log id
	Offset uint64 // added to LogID's seqs to store them
}

// LogSeq is the last applied seq in the log's own numbering.
func (p Position) LogSeq() uint64 { return p.Seq - min(p.Offset, p.Seq) }

// ReasonLogReplaced starts the reason of the coverage_gaps row (source
// spool) recorded when the collector's event log was replaced.
const ReasonLogReplaced = "event log replaced"

// ErrPositionMoved is returned by AdoptLog and SwitchLog when the cursor no
// longer belongs to the log the caller thought (another writer?).
var ErrPositionMoved = errors.New("the writer cursor belongs to another event log than expected")

// Position reads the cursor with its log.
func (s *Store) Position(ctx context.Context) (Position, error) {
	var p Position
	var seq, off int64
	var id *string
	if err := s.pool.QueryRow(ctx, `SELECT last_seq, log_id, seq_offset FROM kickmon.writer_cursor`).Scan(&seq, &id, &off); err != nil {
		return p, fmt.Errorf("read writer cursor: %w", err)
	}
	p.Seq, p.Offset = uint64(seq), uint64(off)
	if id != nil {
		p.LogID = *id
	}
	return p, nil
}

// AdoptLog records that a cursor without a log id (a new database, or one
// from before log ids) belongs to logID: the seqs go on unchanged. A cursor
// already on logID is left as it is.
func (s *Store) AdoptLog(ctx context.Context, logID string) (Position, error) {
	return s.moveLog(ctx, "", logID, false)
}

// SwitchLog moves the cursor from log from (the one it follows; "" for a
// cursor without a log id) to the new log to, in one transaction: it
// records a coverage_gaps row (source spool, reason starting with
// ReasonLogReplaced) for the events of the old log the writer never
// received, and the new log's seqs are stored from the cursor + 2 on (one
// seq, the gap's first_seq = last_seq, stands for the unknown tail of the
// old log, so every stored seq is an event or a gap). A cursor already on
// to is left as it is (a retry after a commit whose answer was lost).
func (s *Store) SwitchLog(ctx context.Context, from, to string) (Position, error) {
	return s.moveLog(ctx, from, to, true)
}

func (s *Store) moveLog(ctx context.Context, from, to string, replaced bool) (Position, error) {
	var p Position
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var seq, off int64
		var id *string
		if err := tx.QueryRow(ctx, `SELECT last_seq, log_id, seq_offset FROM kickmon.writer_cursor FOR UPDATE`).Scan(&seq, &id, &off); err != nil {
			return fmt.Errorf("lock writer cursor: %w", err)
		}
		p = Position{Seq: uint64(seq), Offset: uint64(off)}
		if id != nil {
			p.LogID = *id
		}
		switch {
		case p.LogID == to:
			return nil
		case p.LogID != from:
			return fmt.Errorf("%w: it follows %q, not %q", ErrPositionMoved, p.LogID, from)
		}
		if replaced {
			p.Offset = p.Seq + 1
			reason := fmt.Sprintf("%s: the collector's event log %s was replaced by %s (its state was lost or moved aside); "+
				"events of the old log after its seq %d were never received, their number is unknown",
				ReasonLogReplaced, orUnknown(from), to, p.LogSeq())
			if _, err := tx.Exec(ctx, `
INSERT INTO kickmon.coverage_gaps (source, started_at, ended_at, reason, first_seq, last_seq)
VALUES ('spool', (SELECT max(observed_at) FROM kickmon.status_events WHERE seq = $1::bigint), now(), $2, $3, $3)`,
				seq, reason, int64(p.Offset)); err != nil {
				return fmt.Errorf("record the replaced event log: %w", err)
			}
			p.Seq = p.Offset
		}
		p.LogID = to
		if _, err := tx.Exec(ctx, `UPDATE kickmon.writer_cursor SET last_seq = $1, log_id = $2, seq_offset = $3, updated_at = now()`,
			int64(p.Seq), to, int64(p.Offset)); err != nil {
			return fmt.Errorf("move writer cursor to log %s: %w", to, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kickmon.event_logs (log_id, seq_offset) VALUES ($1, $2) ON CONFLICT (log_id) DO NOTHING`,
			to, int64(p.Offset)); err != nil {
			return fmt.Errorf("record event log %s: %w", to, err)
		}
		return nil
	})
	if err != nil {
		return Position{}, err
	}
	if replaced && p.LogID == to {
		s.log.Warn("the collector's event log was replaced; recorded in kickmon.coverage_gaps, following the new log from its start",
			logkeys.OldLogID, orUnknown(from), logkeys.LogID, to, logkeys.Seq, p.Seq)
	}
	return p, nil
}

func orUnknown(id string) string {
	if id == "" {
		return "(unknown)"
	}
	return id
}
