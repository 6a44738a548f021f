// Package store writes collector events into PostgreSQL exactly once: one
// transaction per flush holding the cursor row lock, with one multi-row
// statement per table (unnest upserts that never let an older event
// overwrite a newer one; status_events by binary COPY), the cursor
// committed with the data, and NOTIFY kickmon_events with the seq range.
// Prepare encodes a batch ahead of its transaction so that a pipeline can
// overlap encoding with the previous commit. Bad events are isolated by
// bisection and quarantined so that one of them never wedges the pipeline.
// Migrations are embedded.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
	"google.golang.org/protobuf/proto"
)

// NotifyChannel is the channel NOTIFY announces committed seq ranges on,
// with the payload "<first>-<last>".
const NotifyChannel = "kickmon_events"

// Store is the writer's PostgreSQL side. Writes must come from one
// goroutine at a time (the writer's flush loop); reads may be concurrent.
type Store struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	parts partitionCache

	// beforeStmt, when set (tests), runs before each statement of a flush
	// transaction with the statement's name.
	beforeStmt func(ctx context.Context, name string)

	// known is the cursor the last transaction committed plus one (0:
	// not known), for fastTxn.
	known atomic.Uint64

	outboxOff bool // no notify_outbox rows (outbox.go)
}

// Open creates a connection pool (8 connections unless the DSN says
// pool_max_conns). It does not connect yet; see Ping.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("parse database URL: invalid DSN (check KICKMON_DATABASE_URL)")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 8
	}
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		// The writer's statements are short; PostgreSQL's JIT compiled the
		// confirmation refresh's plans for ~40 ms a statement.
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	return &Store{pool: pool, log: log}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Pool is the connection pool (for tests and queries).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Migrate brings the schema up to date (see the package-level Migrate),
// then River's tables (MigrateRiver). from and to are kickmon's versions.
func (s *Store) Migrate(ctx context.Context) (from, to int, err error) {
	if from, to, err = Migrate(ctx, s.pool); err != nil {
		return from, to, err
	}
	return from, to, MigrateRiver(ctx, s.pool)
}

// Cursor is the last applied seq.
func (s *Store) Cursor(ctx context.Context) (uint64, error) {
	var c int64
	if err := s.pool.QueryRow(ctx, `SELECT last_seq FROM kickmon.writer_cursor`).Scan(&c); err != nil {
		return 0, fmt.Errorf("read writer cursor: %w", err)
	}
	return uint64(c), nil
}

// Result says what a Write did.
type Result struct {
	// Applied counts events written to status_events (and the other tables).
	Applied int
	// Skipped counts events at or below the cursor (already applied).
	Skipped int
	// Quarantined counts events moved to the quarantine table.
	Quarantined int
	// Lost counts seqs recorded as lost (coverage_gaps, source spool).
	Lost uint64
	// Rows counts rows inserted or updated.
	Rows int64
	// Cursor is the cursor after the write.
	Cursor uint64
}

// Prepared is a batch validated and encoded ahead of its transaction, so
// that a pipeline can encode the next batch while the previous one
// commits. It is immutable: retrying a failed write reuses it.
type Prepared struct {
	p       batch.Pending
	invalid map[int]error // index in p.Events → why it cannot be applied
	enc     *encoded      // all of p.Events when every one is valid
}

// Pending is the batch p was prepared from.
func (p *Prepared) Pending() batch.Pending { return p.p }

// Prepare validates p and encodes its rows. It does not touch the
// database; the transaction (WritePrepared) checks that what it encoded
// still matches the cursor and re-encodes otherwise.
func Prepare(p batch.Pending) *Prepared {
	pp := &Prepared{p: p}
	for i, e := range p.Events {
		if err := Validate(e); err != nil {
			if pp.invalid == nil {
				pp.invalid = map[int]error{}
			}
			pp.invalid[i] = err
		}
	}
	if pp.invalid == nil && len(p.Events) > 0 {
		pp.enc, _ = encode(p.Events) // on failure, the transaction tries again and says why
	}
	return pp
}

// Write applies pending events (ascending seq) exactly once; it is
// WritePrepared(ctx, Prepare(p)).
func (s *Store) Write(ctx context.Context, p batch.Pending) (Result, error) {
	return s.WritePrepared(ctx, Prepare(p))
}

// WritePrepared applies a prepared batch exactly once. Events at or below
// the cursor are skipped; seqs missing between the cursor and the events,
// or up to SkipTo, are recorded as lost. A data error (SQLSTATE class 22
// or 23) or an invalid event is isolated by bisection and the offending
// event quarantined; the rest is applied. Other errors (the database is
// unreachable, ctx ended) are returned with nothing of the failed
// transaction applied: retry the same Prepared.
func (s *Store) WritePrepared(ctx context.Context, pp *Prepared) (Result, error) {
	var res Result
	evs := pp.p.Events
	if pp.enc != nil {
		if err := s.isolate(ctx, evs, pp.enc, &res); err != nil {
			return res, err
		}
		evs = nil
	}
	for off := 0; len(evs) > 0; {
		i := 0
		var bad error
		for ; i < len(evs); i++ {
			if bad = pp.invalid[off+i]; bad != nil {
				break
			}
		}
		if i > 0 {
			if err := s.isolate(ctx, evs[:i], nil, &res); err != nil {
				return res, err
			}
		}
		if i == len(evs) {
			break
		}
		if err := s.quarantine(ctx, evs[i], bad, &res); err != nil {
			return res, err
		}
		evs, off = evs[i+1:], off+i+1
	}
	if pp.p.SkipTo > 0 {
		if err := s.apply(ctx, nil, nil, pp.p.SkipTo, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// isolate applies evs, bisecting on data errors down to the bad event. enc,
// if not nil, is the encoding of evs.
func (s *Store) isolate(ctx context.Context, evs []*kickmonv1.Event, enc *encoded, res *Result) error {
	err := s.apply(ctx, evs, enc, 0, res)
	if err == nil || !isDataError(err) || ctx.Err() != nil {
		return err
	}
	if len(evs) == 1 {
		return s.quarantine(ctx, evs[0], err, res)
	}
	mid := len(evs) / 2
	if err := s.isolate(ctx, evs[:mid], nil, res); err != nil {
		return err
	}
	return s.isolate(ctx, evs[mid:], nil, res)
}

// isDataError reports whether err is about the data rather than the
// database: PostgreSQL data exceptions (22) and integrity violations (23),
// or an event the writer refused to encode.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")) && !isNoPartition(err)
	}
	return isInvalid(err)
}

// lostRange is a run of seqs that never reached the writer.
type lostRange struct {
	first, last uint64
	next        *kickmonv1.Event // the first event after the loss, if known
}

// txn runs fn in a transaction holding the cursor row lock. fn receives the
// cursor and returns the new one; it may queue statements in p, which are
// sent with the cursor's update before the commit. Result counters are
// updated only when the transaction commits.
//
// When the cursor the last transaction committed is known, the transaction
// takes the round trips of a flush down to BEGIN with the lock, the COPY,
// and everything else with the COMMIT (fastTxn); otherwise, or if the
// cursor has moved meanwhile (an operator, a log switch), it reads the
// cursor first and commits on its own (slowTxn).
func (s *Store) txn(ctx context.Context, fn txnFunc, res *Result) error {
	var part Result
	err := errCursorMoved
	if k := s.known.Load(); k > 0 {
		err = s.fastTxn(ctx, fn, k-1, &part)
	}
	if errors.Is(err, errCursorMoved) {
		part = Result{}
		err = s.slowTxn(ctx, fn, &part)
	}
	if err != nil {
		s.known.Store(0) // the outcome may be unknown: read the cursor next time
		return err
	}
	s.known.Store(part.Cursor + 1)
	res.Applied += part.Applied
	res.Skipped += part.Skipped
	res.Quarantined += part.Quarantined
	res.Lost += part.Lost
	res.Rows += part.Rows
	res.Cursor = part.Cursor
	return nil
}

type txnFunc func(tx pgx.Tx, p *pipeline, cursor uint64, res *Result) (uint64, error)

// errCursorMoved is a fast transaction finding the cursor other than it
// assumed; nothing of it was committed.
var errCursorMoved = errors.New("the writer cursor moved")

// slowTxn reads and locks the cursor, runs fn, and commits.
func (s *Store) slowTxn(ctx context.Context, fn txnFunc, part *Result) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		s.hook(ctx, "lock cursor")
		var c int64
		if err := tx.QueryRow(ctx, `SELECT last_seq FROM kickmon.writer_cursor FOR UPDATE`).Scan(&c); err != nil {
			return fmt.Errorf("lock writer cursor: %w", err)
		}
		cursor := uint64(c)
		var p pipeline
		next, err := fn(tx, &p, cursor, part)
		if err != nil {
			return err
		}
		if next > cursor {
			s.hook(ctx, "cursor")
			p.text(queued{name: "writer cursor"}, `UPDATE kickmon.writer_cursor SET last_seq = $1, updated_at = now()`, int8Text(next))
		}
		if err := p.send(ctx, tx, part); err != nil {
			return err
		}
		part.Cursor = max(next, cursor)
		s.hook(ctx, "commit")
		return nil
	})
}

// fastTxn runs fn assuming the cursor is cursor: BEGIN and the row lock go
// in one round trip, and the cursor's update, which fails on the cursor's
// CHECK constraint unless the cursor was as assumed, is queued with the
// COMMIT at the end of fn's statements. A failed statement skips the
// COMMIT, so the transaction commits only if the assumption held.
func (s *Store) fastTxn(ctx context.Context, fn txnFunc, cursor uint64, part *Result) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("lock writer cursor: %w", err)
	}
	defer conn.Release() // in a transaction still if the COMMIT was not reached: the pool closes it then
	s.hook(ctx, "lock cursor")
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: `BEGIN; SELECT FROM kickmon.writer_cursor FOR UPDATE`})
	if err != nil {
		return fmt.Errorf("lock writer cursor: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback(ctx) // on failure pgx closes the connection, which rolls back
		}
	}()
	var p pipeline
	next, err := fn(tx, &p, cursor, part)
	if err != nil {
		return err
	}
	next = max(next, cursor)
	s.hook(ctx, "cursor")
	p.text(queued{name: "writer cursor"}, `UPDATE kickmon.writer_cursor
SET last_seq = CASE WHEN last_seq = $1::bigint THEN $2::bigint ELSE -1 END,
    updated_at = CASE WHEN $2::bigint > $1::bigint THEN now() ELSE updated_at END`, int8Text(cursor), int8Text(next))
	s.hook(ctx, "commit")
	p.text(queued{name: "commit"}, `COMMIT`)
	err = p.send(ctx, tx, part)
	if isCursorCheck(err) {
		return errCursorMoved
	}
	if err != nil {
		return err
	}
	committed = true
	part.Cursor = next
	return nil
}

// isCursorCheck reports whether err is the fast transaction's cursor
// update finding another cursor than assumed (it sets -1, which the
// cursor's CHECK constraint refuses).
func isCursorCheck(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && pe.ConstraintName == "writer_cursor_last_seq_check"
}

func (s *Store) hook(ctx context.Context, name string) {
	if s.beforeStmt != nil {
		s.beforeStmt(ctx, name)
	}
}

// apply writes evs (all valid, ascending; enc their encoding, or nil) and
// records losses up to skipTo, in one transaction. status_events rows go
// in by COPY (but for a handful); if that finds rows already there (the
// cursor was rewound by hand), the transaction is redone with an insert
// that skips them.
func (s *Store) apply(ctx context.Context, evs []*kickmonv1.Event, enc *encoded, skipTo uint64, res *Result) error {
	err := s.applyTx(ctx, evs, enc, skipTo, true, res)
	if isSessionRekey(err) {
		if err := s.rekeySessions(ctx, evs); err != nil {
			return err
		}
		err = s.applyTx(ctx, evs, enc, skipTo, true, res)
	}
	if err != nil {
		s.parts.forget() // partitions it created are rolled back
	}
	if isDuplicateEvent(err) {
		s.log.Warn("status_events already holds seqs above the writer cursor (was it rewound?); skipping them",
			logkeys.FirstSeq, evs[0].GetSeq(), logkeys.LastSeq, evs[len(evs)-1].GetSeq())
		err = s.applyTx(ctx, evs, enc, skipTo, false, res)
	}
	return err
}

func (s *Store) applyTx(ctx context.Context, evs []*kickmonv1.Event, enc *encoded, skipTo uint64, useCopy bool, res *Result) error {
	return s.txn(ctx, func(tx pgx.Tx, p *pipeline, cursor uint64, res *Result) (uint64, error) {
		fresh := evs
		for len(fresh) > 0 && fresh[0].GetSeq() <= cursor {
			fresh = fresh[1:]
		}
		res.Skipped += len(evs) - len(fresh)
		var lost []lostRange
		expect := cursor + 1
		for _, e := range fresh {
			if e.GetSeq() > expect {
				lost = append(lost, lostRange{first: expect, last: e.GetSeq() - 1, next: e})
			}
			expect = max(expect, e.GetSeq()+1)
		}
		if skipTo >= expect {
			lost = append(lost, lostRange{first: expect, last: skipTo})
			expect = skipTo + 1
		}
		if len(fresh) == 0 && len(lost) == 0 {
			return cursor, nil
		}
		if len(fresh) > 0 {
			if enc == nil || len(fresh) != len(evs) {
				var err error
				if enc, err = encode(fresh); err != nil { // prepared for other events than these
					return 0, err
				}
			}
			if err := s.ensureEventPartitions(ctx, tx, fresh); err != nil {
				return 0, err
			}
			outbox, err := s.outboxRows(fresh)
			if err != nil {
				return 0, err
			}
			if err := s.exec(ctx, tx, p, enc, outbox, useCopy, res); err != nil {
				return 0, err
			}
		}
		if len(lost) > 0 {
			// A lost range's start is read from the status_events row
			// before it, which may be queued.
			if err := p.send(ctx, tx, res); err != nil {
				return 0, err
			}
		}
		for _, l := range lost {
			if err := s.recordLost(ctx, tx, l, res); err != nil {
				return 0, err
			}
		}
		last := expect - 1
		if len(fresh) > 0 {
			s.hook(ctx, "notify")
			payload := fmt.Sprintf("%d-%d", fresh[0].GetSeq(), fresh[len(fresh)-1].GetSeq())
			p.text(queued{name: "notify " + NotifyChannel}, `SELECT pg_notify($1, $2)`, NotifyChannel, payload)
		}
		return last, nil
	}, res)
}

// encoded is a run of events turned into what its statements send.
type encoded struct {
	first, last uint64 // seq range, for errors
	rows        batch.Rows
	streamers   params
	sessions    params
	events      []byte // binary COPY stream of the status_events rows, for copyMinEvents or more
	insert      params // else the status_events rows for insertEvents
	closes      params
	gaps        params
}

// copyMinEvents is the fewest status_events rows sent by COPY: it takes a
// round trip more than an insert, which is faster for a handful of rows
// (one row: 0.9 ms a transaction with the insert, 1.2 ms with COPY).
const copyMinEvents = 8

// encode coalesces evs (valid, ascending, not empty) and encodes the rows.
// An error (which the types used make impossible in practice) is reported
// as an invalid event, to be isolated and quarantined.
func encode(evs []*kickmonv1.Event) (*encoded, error) {
	rows := batch.Coalesce(evs)
	enc := &encoded{
		first: evs[0].GetSeq(),
		last:  evs[len(evs)-1].GetSeq(),
		rows:  rows,
	}
	var eventArgs []any // none: COPY
	if len(rows.Events) >= copyMinEvents {
		enc.events = encodeEventsCopy(rows.Events)
	} else {
		eventArgs = encodeEvents(rows.Events)
	}
	m := typeMaps.Get().(*pgtype.Map)
	defer typeMaps.Put(m)
	args := []struct {
		dst  *params
		args []any
	}{
		{&enc.streamers, encodeStreamers(rows.Streamers).args()},
		{&enc.sessions, encodeSessions(rows.Sessions)},
		{&enc.insert, eventArgs},
		{&enc.closes, encodeCloses(rows.Closes)},
		{&enc.gaps, encodeGaps(rows.Gaps)},
	}
	for _, p := range args {
		var err error
		if *p.dst, err = encodeParams(m, p.args); err != nil {
			return nil, invalid("encode seq %d-%d: %v", enc.first, enc.last, err)
		}
	}
	return enc, nil
}

// exec writes an encoded run of fresh events, one statement per table:
// status_events by COPY, sent at once, when enc has its stream and
// useCopy; the others (and status_events by insertEvents otherwise) are
// queued in p, the notification outbox's rows (outboxRows) with the
// streamers upsert.
func (s *Store) exec(ctx context.Context, tx pgx.Tx, p *pipeline, enc *encoded, outbox *params, useCopy bool, res *Result) error {
	rows := enc.rows
	events := enc.insert
	if enc.events != nil && !useCopy {
		m := typeMaps.Get().(*pgtype.Map)
		var err error
		events, err = encodeParams(m, encodeEvents(rows.Events))
		typeMaps.Put(m)
		if err != nil {
			return invalid("encode seq %d-%d: %v", enc.first, enc.last, err)
		}
	}
	streamersStmt, streamersSQL, streamers := streamersWithOutbox(enc.streamers, outbox)
	stmts := []struct {
		name, stmt, sql string
		n               int
		p               params
	}{
		{"streamers", streamersStmt, streamersSQL, len(rows.Streamers), streamers},
		{"stream_sessions", "kickmon_sessions", upsertSessions, len(rows.Sessions), enc.sessions},
		{"status_events", "kickmon_events", insertEvents, len(rows.Events), events},
		{"coverage_gaps close", "kickmon_close_gaps", closeGaps, len(rows.Closes), enc.closes},
		{"coverage_gaps open", "kickmon_open_gaps", openGaps, len(rows.Gaps), enc.gaps},
	}
	for _, q := range stmts {
		if q.n == 0 {
			continue
		}
		s.hook(ctx, q.name)
		if q.name == "status_events" && enc.events != nil && useCopy {
			tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(enc.events), copyEvents)
			if err != nil {
				return fmt.Errorf("write %s (seq %d-%d): %w", q.name, enc.first, enc.last, err)
			}
			res.Rows += tag.RowsAffected()
			continue
		}
		if err := p.prepared(ctx, tx, queued{name: q.name, first: enc.first, last: enc.last, rows: true}, q.stmt, q.sql, q.p); err != nil {
			return err
		}
	}
	res.Applied += len(rows.Events)
	return nil
}

// isDuplicateEvent reports whether err is a status_events row that is
// already there (only COPY can cause it: the insert skips such rows). The
// constraint is the partition's primary key (status_events_YYYY_MM_pkey).
func isDuplicateEvent(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" &&
		strings.HasPrefix(pe.ConstraintName, "status_events") && strings.HasSuffix(pe.ConstraintName, "_pkey")
}

func (s *Store) recordLost(ctx context.Context, tx pgx.Tx, l lostRange, res *Result) error {
	s.hook(ctx, "lost range")
	next := pgtype.Timestamptz{}
	if l.next != nil {
		next = ts(l.next.GetObservedAt())
	}
	reason := fmt.Sprintf("events %d-%d were dropped by the collector's spool before the writer stored them", l.first, l.last)
	if _, err := tx.Exec(ctx, insertLost, int64(l.first), next, reason, int64(l.last)); err != nil {
		return fmt.Errorf("record lost seqs %d-%d: %w", l.first, l.last, err)
	}
	s.log.Warn("events lost before they were stored; recorded in kickmon.coverage_gaps",
		logkeys.FirstSeq, l.first, logkeys.LastSeq, l.last)
	res.Lost += l.last - l.first + 1
	res.Rows++
	return nil
}

// quarantine stores a bad event in kickmon.quarantine and moves the cursor
// past it, in one transaction, recording any loss before it.
func (s *Store) quarantine(ctx context.Context, e *kickmonv1.Event, cause error, res *Result) error {
	return s.txn(ctx, func(tx pgx.Tx, _ *pipeline, cursor uint64, res *Result) (uint64, error) {
		if e.GetSeq() <= cursor {
			res.Skipped++
			return cursor, nil
		}
		if e.GetSeq() > cursor+1 {
			if err := s.recordLost(ctx, tx, lostRange{first: cursor + 1, last: e.GetSeq() - 1, next: e}, res); err != nil {
				return 0, err
			}
		}
		raw, err := proto.Marshal(e)
		if err != nil {
			raw = []byte{} // e.g. invalid UTF-8; the event column says what it could
		}
		msg := strings.ReplaceAll(cause.Error(), "\x00", "\ufffd")
		s.hook(ctx, "quarantine")
		if _, err := tx.Exec(ctx, `INSERT INTO kickmon.quarantine (seq, broadcaster_user_id, kind, error, event, event_proto)
VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT (seq) DO NOTHING`,
			int64(e.GetSeq()), optInt(e.GetStreamer().GetBroadcasterUserId()), KindName(e.GetKind()), msg, quarantineJSON(e), raw); err != nil {
			return 0, fmt.Errorf("quarantine seq %d: %w", e.GetSeq(), err)
		}
		s.log.Error("event quarantined in kickmon.quarantine; continuing",
			logkeys.Seq, e.GetSeq(), logkeys.Kind, KindName(e.GetKind()), logkeys.Err, msg, logkeys.Event, quarantineJSON(e))
		res.Quarantined++
		res.Rows++
		return e.GetSeq(), nil
	}, res)
}
