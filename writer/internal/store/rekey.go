package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
)

// A collector that lost its state (a replaced event log) gives a stream
// live across the loss a new session_id for the same (broadcaster_user_id,
// started_at). That is one session, not two: its row takes the new id
// (the one every later event and streamers.session_id carry); the events
// stored before keep the old one. Found by the unique constraint, so a
// flush pays for it only when it happens.

// isSessionRekey reports whether err is a stream_sessions row with a known
// (broadcaster_user_id, started_at) under another session_id.
func isSessionRekey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "stream_sessions_broadcaster_user_id_started_at_key"
}

const rekeySessions = `
UPDATE kickmon.stream_sessions t SET session_id = u.id
FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(id, uid, started)
WHERE t.broadcaster_user_id = u.uid AND t.started_at = u.started AND t.session_id <> u.id
  AND NOT EXISTS (SELECT 1 FROM kickmon.stream_sessions x WHERE x.session_id = u.id)
RETURNING t.broadcaster_user_id, u.id`

// rekeySessions gives the sessions of evs their new ids, in a transaction
// of its own (harmless if the flush then fails: the next one needs it too).
func (s *Store) rekeySessions(ctx context.Context, evs []*kickmonv1.Event) error {
	args := encodeSessions(batch.Coalesce(evs).Sessions)[:3] // id, uid, started_at
	s.hook(ctx, "rekey sessions")
	rows, err := s.pool.Query(ctx, rekeySessions, args...)
	if err != nil {
		return fmt.Errorf("re-key stream_sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid int64
		var id string
		if err := rows.Scan(&uid, &id); err != nil {
			return fmt.Errorf("re-key stream_sessions: %w", err)
		}
		s.log.Warn("a session already stored came again under a new session_id (the collector lost its state); the row takes the new id",
			logkeys.UserID, uid, logkeys.SessionID, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("re-key stream_sessions: %w", err)
	}
	return nil
}
