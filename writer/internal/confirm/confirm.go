// Package confirm keeps kickmon.streamers' confirmation times fresh. The
// collector confirms unchanged states every poll without an event (events
// are for changes), so the event-written last_confirmed_at would go stale;
// every interval the Refresher reads the collector's watch list
// (ListStreamers) and moves the rows' confirmation times forward
// (store.RefreshConfirmed). It runs beside the consumer and never holds it
// up: a collector or database outage only delays the next refresh (with
// backoff) and shows in the logs and metrics, never in READY or the
// watchdog.
//
// It scales to 100k streamers by reading and writing only what changed, in
// chunks: it asks the collector for confirmation times alone
// (confirmations_only) and only for the streamers changed since its last
// list was written (changed_since; every Options.FullEvery-th list is
// whole, and a collector that predates these options sends whole lists of
// full states, which work the same); streamers whose confirmation times
// are those it already wrote are left out, and the rest go in statements
// of Options.Chunk rows, each with its own timeout, so one refresh never
// becomes a 100k-row statement that times out and starts over (issue 13:
// 6 of 43 refreshes of 10k failed; the collector's whole lists of 100k
// full states were a third of its CPU in a quiet world).
package confirm

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
	"github.com/kickmon/kickmon/writer/internal/metrics"
	"github.com/kickmon/kickmon/writer/internal/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Options tune the Refresher. Zero values take the defaults noted.
type Options struct {
	Interval time.Duration // between refreshes (30s)
	// Timeout bounds each call: ListStreamers, the statement (10s, at most Interval).
	Timeout time.Duration
	// MinBackoff is the first retry delay after a failure (1s, at most
	// Interval); it doubles up to Interval.
	MinBackoff time.Duration
	// CatchUp is the first delay before trying a list again while the
	// database has not yet reached its seq (100ms); it doubles up to 2s,
	// and the list is given up after Interval.
	CatchUp time.Duration
	// Chunk is how many streamers one statement refreshes (250). Small on
	// purpose: a flush that updates a streamer in a chunk being written
	// waits for that chunk's commit (the refresh skips rows a flush holds,
	// not the other way round); with 2000 a chunk held flushes for up to
	// seconds, the tail of push → commit at 1k changes/s (make bench-system).
	Chunk int
	// FullEvery makes every FullEvery-th list a whole one (20); the
	// others hold what changed since the last list written. A whole list
	// forgets the streamers no longer watched.
	FullEvery int
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = min(10*time.Second, o.Interval)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = min(time.Second, o.Interval)
	}
	if o.CatchUp <= 0 {
		o.CatchUp = 100 * time.Millisecond
	}
	if o.Chunk <= 0 {
		o.Chunk = 250
	}
	if o.FullEvery <= 0 {
		o.FullEvery = 20
	}
}

// Refresher refreshes confirmation times from the collector.
type Refresher struct {
	conn *kickapi.Conn
	st   *store.Store
	log  *slog.Logger
	m    *metrics.Metrics
	opts Options

	// State of Run's loop (its goroutine only).
	list      *kickmonv1.ListStreamersResponse // a list waiting for the database to reach its seq
	listUntil time.Time                        // when to give that list up
	catchUp   time.Duration                    // next wait for it
	retry     backoff.Backoff                  // waits after failures
	failing   string                           // the failing outcome (metrics.Confirm*) of the current streak
	// written is, per streamer, a fingerprint of the confirmation times
	// last written: unchanged streamers are not sent again.
	written map[int64]uint64
	// since is the changes token of the last list written ("" for none),
	// and partial counts the lists of changes since the last whole one.
	since   string
	partial int
}

// New returns a refresher reading from conn and writing to st; m may be nil.
func New(conn *kickapi.Conn, st *store.Store, log *slog.Logger, m *metrics.Metrics, opts Options) *Refresher {
	opts.defaults()
	return &Refresher{conn: conn, st: st, log: log, m: m, opts: opts,
		retry:   backoff.Backoff{Policy: backoff.Policy{Base: opts.MinBackoff, Max: opts.Interval}},
		written: map[int64]uint64{}}
}

// Run refreshes at once, then every Interval, until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(r.step(ctx))
	}
}

// step runs one attempt and returns the wait before the next.
func (r *Refresher) step(ctx context.Context) time.Duration {
	start := time.Now()
	defer func() { r.m.ConfirmDuration(time.Since(start)) }()
	if r.list == nil {
		lctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		req := &kickmonv1.ListStreamersRequest{ConfirmationsOnly: true, ChangedSince: r.since}
		if r.partial+1 >= r.opts.FullEvery {
			req.ChangedSince = ""
		}
		list, err := r.conn.ListStreamers(lctx, req)
		cancel()
		if err != nil {
			return r.failed(ctx, metrics.ConfirmCollector, kickapi.Explain(r.conn.Path(), err))
		}
		r.list, r.listUntil, r.catchUp = list, time.Now().Add(r.opts.Interval), r.opts.CatchUp
		if !list.GetChangesOnly() {
			r.forget(list.GetStreamers())
		}
	}
	var rows int64
	due := r.due(r.list.GetStreamers())
	for len(due) > 0 {
		chunk := due[:min(r.opts.Chunk, len(due))]
		due = due[len(chunk):]
		sctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		res, err := r.st.RefreshConfirmed(sctx, r.list.GetLastSeq(), chunk)
		cancel()
		if err != nil {
			r.list = nil // a fresh list next time; the chunks written stay written
			return r.failed(ctx, metrics.ConfirmDatabase, err)
		}
		if res.Behind {
			if wait := r.catchUp; time.Now().Add(wait).Before(r.listUntil) {
				r.catchUp = min(2*r.catchUp, 2*time.Second)
				return wait
			}
			r.log.Debug("the database did not reach the collector's list in time; confirmation times not refreshed",
				logkeys.Seq, res.Cursor, logkeys.LastSeq, r.list.GetLastSeq())
			r.list = nil
			r.m.ObserveConfirm(metrics.ConfirmBehind, 0)
			return r.opts.Interval
		}
		rows += res.Rows
		for _, st := range chunk {
			r.written[st.GetBroadcasterUserId()] = fingerprint(st)
		}
	}
	if r.failing != "" {
		r.log.Info("confirmation times are refreshed again")
	}
	r.log.Debug("confirmation times refreshed", logkeys.Rows, rows, logkeys.LastSeq, r.list.GetLastSeq())
	r.m.ObserveConfirm(metrics.ConfirmOK, rows)
	r.since, r.partial = r.list.GetChangesToken(), r.partial+1
	if !r.list.GetChangesOnly() {
		r.partial = 0
	}
	r.list, r.failing = nil, ""
	r.retry.Succeeded(time.Now())
	return r.opts.Interval
}

// due returns the streamers whose confirmation times differ from those
// last written.
func (r *Refresher) due(list []*kickmonv1.Streamer) []*kickmonv1.Streamer {
	var out []*kickmonv1.Streamer
	for _, st := range list {
		if w, ok := r.written[st.GetBroadcasterUserId()]; !ok || w != fingerprint(st) {
			out = append(out, st)
		}
	}
	return out
}

// forget drops what was written for streamers no longer watched.
func (r *Refresher) forget(list []*kickmonv1.Streamer) {
	if len(r.written) <= len(list) {
		return // nobody can be missing (each list holds a streamer once)
	}
	watched := make(map[int64]bool, len(list))
	for _, st := range list {
		watched[st.GetBroadcasterUserId()] = true
	}
	for id := range r.written {
		if !watched[id] {
			delete(r.written, id)
		}
	}
}

// fingerprint hashes a streamer's confirmation times (its own and each
// source's): what RefreshConfirmed writes.
func fingerprint(st *kickmonv1.Streamer) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v int64) {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		_, _ = h.Write(b[:])
	}
	ts := func(t *timestamppb.Timestamp) {
		put(t.GetSeconds())
		put(int64(t.GetNanos()))
	}
	ts(st.GetLastConfirmedAt())
	for _, c := range st.GetCoverage() {
		put(int64(c.GetSource()))
		ts(c.GetLastConfirmedAt())
	}
	return h.Sum64()
}

// failed records a failure and returns the backoff. The first failure of a
// kind is a warning, repeats are debug: an outage is said once.
func (r *Refresher) failed(ctx context.Context, outcome string, err error) time.Duration {
	if ctx.Err() != nil {
		return r.opts.Interval // shutting down: not a failure
	}
	r.m.ObserveConfirm(outcome, 0)
	wait := r.retry.Failed(time.Now())
	msg := "cannot refresh confirmation times (the collector's list); retrying"
	if outcome == metrics.ConfirmDatabase {
		msg = "cannot refresh confirmation times (database); retrying"
	}
	level := slog.LevelWarn
	if r.failing == outcome {
		level = slog.LevelDebug
	}
	r.failing = outcome
	r.log.Log(ctx, level, msg, logkeys.Err, err, logkeys.Backoff, wait)
	return wait
}
