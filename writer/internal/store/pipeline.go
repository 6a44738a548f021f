package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A flush's statements that need no answer before the next one are queued
// and sent together: one round trip instead of one each (under load, each
// round trip is also a wait for the backend and then the writer to get a
// CPU). They run in the flush's transaction, in order; the first that
// fails aborts the transaction, and the flush is redone or bisected as
// before.

// pipeline queues statements of one transaction until send.
type pipeline struct {
	b     pgconn.Batch
	stmts []queued
}

// queued is one statement waiting in a pipeline.
type queued struct {
	name  string // for errors, e.g. "streamers"
	first uint64 // seq range it writes, for errors (0: none)
	last  uint64
	rows  bool // its rows affected count in Result.Rows
}

// prepared queues sql, prepared on tx's connection under stmt (once per
// connection), with the parameters encoded ahead.
func (p *pipeline) prepared(ctx context.Context, tx pgx.Tx, q queued, stmt, sql string, prm params) error {
	sd, err := tx.Conn().Prepare(ctx, stmt, sql)
	if err != nil {
		return p.wrap(q, err)
	}
	if !slices.Equal(sd.ParamOIDs, prm.oids) {
		return p.wrap(q, fmt.Errorf("statement %s takes parameters of types %v, not %v", stmt, sd.ParamOIDs, prm.oids))
	}
	p.b.ExecStatement(sd, prm.values, prm.formats, nil)
	p.stmts = append(p.stmts, q)
	return nil
}

// text queues sql with parameters in text format (types from the SQL).
func (p *pipeline) text(q queued, sql string, args ...string) {
	values := make([][]byte, len(args))
	for i, a := range args {
		values[i] = []byte(a)
	}
	p.b.ExecParams(sql, values, nil, nil, nil)
	p.stmts = append(p.stmts, q)
}

// int8 is n as a text parameter.
func int8Text(n uint64) string { return strconv.FormatUint(n, 10) }

// send runs what is queued and adds the rows the statements affected to
// res; the first error is returned naming its statement. The pipeline is
// empty afterwards, whatever happened.
func (p *pipeline) send(ctx context.Context, tx pgx.Tx, res *Result) error {
	if len(p.stmts) == 0 {
		return nil
	}
	stmts := p.stmts
	b := p.b
	p.b, p.stmts = pgconn.Batch{}, nil
	mrr := tx.Conn().PgConn().ExecBatch(ctx, &b)
	i := 0
	var rows int64
	for mrr.NextResult() {
		r := mrr.ResultReader().Read()
		if r.Err != nil {
			break
		}
		if i < len(stmts) && stmts[i].rows {
			rows += r.CommandTag.RowsAffected()
		}
		i++
	}
	if err := mrr.Close(); err != nil {
		return p.wrap(stmts[min(i, len(stmts)-1)], err)
	}
	res.Rows += rows
	return nil
}

func (p *pipeline) wrap(q queued, err error) error {
	if q.first == 0 {
		return fmt.Errorf("write %s: %w", q.name, err)
	}
	return fmt.Errorf("write %s (seq %d-%d): %w", q.name, q.first, q.last, err)
}
