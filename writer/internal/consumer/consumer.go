// Package consumer is the writer's pipeline: it follows the collector's
// WatchEvents stream from the committed cursor, batches events (group
// commit), writes each batch through the store, and acknowledges committed
// seqs to the collector. It reconnects with backoff when the collector
// restarts, turns OUT_OF_RANGE into a recorded gap, keeps retrying while
// PostgreSQL is down (holding back the stream so the collector's spool keeps
// the events), and drains what it holds on shutdown.
//
// The collector's event log has an id; the cursor keeps the id it belongs
// to. When the collector answers with another log (its spool was lost and
// started anew), the pipeline first commits everything it received from
// the old log, then records the replacement as a gap and follows the new
// log from its start (store.SwitchLog), or, with Options.StopOnLogChange,
// stops with an error wrapping ErrLogChanged.
package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
	"github.com/kickmon/kickmon/writer/internal/metrics"
	"github.com/kickmon/kickmon/writer/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrLogChanged is wrapped by Run's error when the collector's event log
// is not the one the cursor belongs to and Options.StopOnLogChange is set.
var ErrLogChanged = errors.New("the collector's event log changed")

// Options tune the pipeline. Zero values take the defaults noted.
type Options struct {
	BatchSize    int           // flush at this many pending events (10)
	MaxBatch     int           // most events per flush (5000)
	Interval     time.Duration // flush when the oldest pending event waited this long (100ms)
	FlushTimeout time.Duration // per attempt (30s)
	DrainTimeout time.Duration // on shutdown, to write what is held (10s)
	// MinBackoff and MaxBackoff, each when set, replace that bound of the
	// shared retry policy (tests); by default it follows the class: the collector's socket
	// (backoff.Local: 100 ms to 5 s), the database (backoff.Transient:
	// 1 s to 30 s).
	MinBackoff, MaxBackoff time.Duration
	// OnSubscribed is called once, the first time the event stream opens.
	OnSubscribed func()
	// StopOnLogChange makes a replaced event log stop the pipeline
	// (KICKMON_ON_LOG_CHANGE=stop) instead of resyncing to the new log.
	StopOnLogChange bool
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 10
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 5000
	}
	def(&o.Interval, 100*time.Millisecond)
	def(&o.FlushTimeout, 30*time.Second)
	def(&o.DrainTimeout, 10*time.Second)
}

// Status is a snapshot of the pipeline, for STATUS= lines, /healthz and logs.
type Status struct {
	Subscribed     bool
	CollectorError string
	Received       uint64 // last seq received from the collector
	Committed      uint64 // the cursor
	LastFlush      time.Time
	LastFlushSize  int
	Lag            time.Duration // newest event's observation to its commit, at the last flush
	DBError        string        // last flush error while the database is failing
	DBErrorSince   time.Time
	LogID          string // the collector's event log the cursor belongs to
	Offset         uint64 // added to LogID's seqs to store them
}

// Consumer is one writer pipeline.
type Consumer struct {
	conn *kickapi.Conn
	st   *store.Store
	log  *slog.Logger
	m    *metrics.Metrics
	opts Options

	subscribed sync.Once
	// born and heartbeat measure liveness on the monotonic clock (a wall
	// clock step must neither fake a stall nor hide one): heartbeat is the
	// time since born of the loop's last turn.
	born      time.Time
	heartbeat atomic.Int64
	fatal     error // set by the watcher before it closes its channel

	mu     sync.Mutex
	status Status

	// ackNow wakes the acker (buffer 1: wakes coalesce, the acker always
	// sends the newest cursor).
	ackNow chan struct{}
}

// New returns a pipeline reading from conn and writing to st; m may be nil.
func New(conn *kickapi.Conn, st *store.Store, log *slog.Logger, m *metrics.Metrics, opts Options) *Consumer {
	opts.defaults()
	c := &Consumer{conn: conn, st: st, log: log, m: m, opts: opts, born: time.Now(), ackNow: make(chan struct{}, 1)}
	return c
}

// Status returns a snapshot of the pipeline.
func (c *Consumer) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Healthy reports whether the pipeline's loop is turning. A database or
// collector outage does not make it unhealthy: the loop keeps running and
// retrying, and a restart would not help.
func (c *Consumer) Healthy() error {
	age := time.Since(c.born) - time.Duration(c.heartbeat.Load())
	if age > 10*time.Second {
		return fmt.Errorf("writer loop stalled for %s", age.Round(time.Second))
	}
	return nil
}

func (c *Consumer) update(f func(*Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.status)
}

// item is what the watcher hands the loop: events, or a loss.
type item struct {
	events []*kickmonv1.Event
	skipTo uint64
}

// flushResult is a finished flush.
type flushResult struct {
	p   batch.Pending
	res store.Result
	err error
}

// Run follows the collector and writes until ctx ends, then drains: it
// stops reading, writes what it holds within DrainTimeout, and returns nil.
// It returns an error if it cannot start (the cursor cannot be read before
// ctx ends), or, after draining, one wrapping ErrLogChanged (see
// Options.StopOnLogChange).
func (c *Consumer) Run(ctx context.Context) error {
	pos, err := c.readCursor(ctx)
	if err != nil {
		return err
	}
	c.setPosition(pos)
	c.update(func(s *Status) { s.Received = pos.Seq })
	c.log.Info("following the collector's events", logkeys.Socket, c.conn.Path(), logkeys.Seq, pos.LogSeq()+1, logkeys.LogID, pos.LogID)

	items := make(chan item, 16)
	var wg sync.WaitGroup
	wg.Go(func() { c.watch(ctx, pos, items) })
	defer wg.Wait()

	ackCtx, stopAcks := context.WithCancel(context.WithoutCancel(ctx))
	var acker sync.WaitGroup
	acker.Go(func() { c.acker(ackCtx) })

	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	err = c.loop(ctx, flushCtx, cancelFlush, items, &wg)
	wg.Wait()
	stopAcks()
	acker.Wait()
	select {
	case <-c.ackNow: // the last flushes committed after the acker's last ack
		c.ack()
	default:
	}
	if err == nil {
		err = c.fatal
	}
	return err
}

// acker acknowledges the cursor each time a flush commits, off the flush
// path: an ack is a round trip to the collector, which records it in its
// spool (a disk write), and the next flush need not wait for that. Wakes
// that come while an ack is on its way coalesce into one ack of the
// newest cursor.
func (c *Consumer) acker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ackNow:
			c.ack()
		}
	}
}

// setPosition publishes the cursor's log, for acks and status.
func (c *Consumer) setPosition(p store.Position) {
	c.update(func(s *Status) { s.Committed, s.LogID, s.Offset = p.Seq, p.LogID, p.Offset })
}

func (c *Consumer) readCursor(ctx context.Context) (store.Position, error) {
	b := c.backoff(backoff.Transient)
	for {
		pos, err := c.st.Position(ctx)
		if err == nil {
			return pos, nil
		}
		if ctx.Err() != nil {
			return store.Position{}, fmt.Errorf("read cursor: %w", err)
		}
		c.dbFailed(err)
		wait := b.Failed(time.Now())
		c.log.Warn("cannot read the writer cursor; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return store.Position{}, fmt.Errorf("read cursor: %w", err)
		}
	}
}

// loop owns the batcher and runs at most one flush at a time, in seq
// order. When it falls behind it pipelines: while a flush is in flight and
// at least as many events as that flush holds are already waiting (or a
// full batch), they are taken and encoded (store.Prepare) so that their
// transaction starts the moment the previous one has committed; the
// database no longer waits for the encoder, and batches stay as large as
// the load needs. Below that, batches are taken only when the previous
// flush is done, so that group commit lets them grow.
func (c *Consumer) loop(ctx, flushCtx context.Context, cancelFlush context.CancelFunc, items <-chan item, flushers *sync.WaitGroup) error {
	b := batch.New(c.opts.BatchSize, c.opts.MaxBatch, c.opts.Interval)
	done := make(chan flushResult, 1)
	prepared := make(chan *store.Prepared, 1)
	inflight := false
	inflightSize := 0        // events in the flush in flight
	preparing := false       // a Prepare goroutine is running
	var next *store.Prepared // prepared, to flush after the one in flight
	var received uint64
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	draining := false
	var drainDeadline <-chan time.Time
	open := true // items not yet closed by the watcher

	for {
		c.heartbeat.Store(int64(time.Since(c.born)))
		now := time.Now()
		switch {
		case !inflight && next != nil:
			pp := next
			next, inflight, inflightSize = nil, true, len(pp.Pending().Events)
			flushers.Go(func() { done <- c.flush(flushCtx, pp) })
		case !inflight && !preparing && (b.Ready(now) || (draining && b.Len() > 0)):
			p := b.Take(now)
			inflight, inflightSize = true, len(p.Events)
			flushers.Go(func() { done <- c.flush(flushCtx, store.Prepare(p)) })
		}
		if inflight && !preparing && next == nil && b.Len() >= c.aheadAt(inflightSize) {
			p := b.Take(now)
			preparing = true
			flushers.Go(func() { prepared <- store.Prepare(p) })
		}
		idle := !inflight && !preparing && next == nil
		if draining && !open && idle && b.Len() == 0 {
			if _, ok := b.Due(); !ok {
				c.log.Info("drained; stopping", logkeys.Seq, c.Status().Committed)
				return nil
			}
		}
		in := items
		if !open || b.Full() {
			in = nil // backpressure: the collector's spool holds the rest
		}
		var wake <-chan time.Time
		if due, ok := b.Due(); ok && idle {
			timer.Reset(max(time.Until(due), 0))
			wake = timer.C
		}
		var stop <-chan struct{}
		if !draining {
			stop = ctx.Done()
		}
		select {
		case it, ok := <-in:
			if !ok {
				open = false
				if !draining { // the watcher stopped for good: write what is held, then return
					draining = true
					drainDeadline = time.After(c.opts.DrainTimeout)
				}
				continue
			}
			if it.skipTo > 0 {
				b.SkipTo(time.Now(), it.skipTo)
				received = max(received, it.skipTo)
			} else {
				b.Add(time.Now(), it.events...)
				received = max(received, it.events[len(it.events)-1].GetSeq())
			}
			c.update(func(s *Status) { s.Received = max(s.Received, received) })
			c.m.SetLag(b.Len())
		case pp := <-prepared:
			preparing, next = false, pp
		case r := <-done:
			inflight = false
			if r.err != nil {
				// Only a cancelled drain ends a flush with an error; what it
				// held stays in the collector's spool (not acknowledged).
				c.log.Warn("flush abandoned at shutdown; the collector keeps the events", logkeys.FirstSeq, firstSeq(r.p), logkeys.LastSeq, r.p.Last(), logkeys.Err, r.err)
				return nil
			}
		case <-wake:
		case <-tick.C:
		case <-stop:
			draining = true
			drainDeadline = time.After(c.opts.DrainTimeout)
			c.log.Info("stopping: writing what is held", logkeys.Events, b.Len())
		case <-drainDeadline:
			c.log.Warn("drain timed out; the collector keeps what was not written", logkeys.Events, b.Len())
			cancelFlush()
			drainDeadline = nil
		}
	}
}

// aheadAt is how many pending events make the loop take and encode the
// next batch while a flush of inflight events is still running: as many
// (the pipeline is behind: waiting for the commit would only let the
// backlog grow), at least BatchSize and at most MaxBatch.
func (c *Consumer) aheadAt(inflight int) int {
	return min(max(inflight, c.opts.BatchSize), c.opts.MaxBatch)
}

func firstSeq(p batch.Pending) uint64 {
	if len(p.Events) > 0 {
		return p.Events[0].GetSeq()
	}
	return p.SkipTo
}

// flush writes pp, retrying with backoff until it commits or ctx ends,
// then has the acker acknowledge the new cursor to the collector.
func (c *Consumer) flush(ctx context.Context, pp *store.Prepared) flushResult {
	p := pp.Pending()
	start := time.Now()
	b := c.backoff(backoff.Transient)
	for {
		actx, cancel := context.WithTimeout(ctx, c.opts.FlushTimeout)
		res, err := c.st.WritePrepared(actx, pp)
		cancel()
		if err == nil {
			c.committed(p, res, time.Since(start))
			return flushResult{p: p, res: res}
		}
		if ctx.Err() != nil {
			return flushResult{p: p, err: err}
		}
		c.dbFailed(err)
		wait := b.Failed(time.Now())
		c.log.Warn("flush failed; retrying (the collector keeps the events meanwhile)",
			logkeys.FirstSeq, firstSeq(p), logkeys.LastSeq, p.Last(), logkeys.Err, err, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return flushResult{p: p, err: err}
		}
	}
}

func (c *Consumer) dbFailed(err error) {
	c.m.FlushFailed()
	c.update(func(s *Status) {
		if s.DBError == "" {
			s.DBErrorSince = time.Now()
		}
		s.DBError = err.Error()
	})
}

func (c *Consumer) committed(p batch.Pending, res store.Result, took time.Duration) {
	var lag time.Duration
	if n := len(p.Events); n > 0 {
		lag = time.Since(p.Events[n-1].GetObservedAt().AsTime())
	}
	if c.Status().DBError != "" {
		c.log.Info("database writes work again")
	}
	c.update(func(s *Status) {
		s.Committed, s.LastFlush, s.LastFlushSize, s.Lag = res.Cursor, time.Now(), len(p.Events), lag
		s.DBError, s.DBErrorSince = "", time.Time{}
		c.m.SetLag(int(s.Received - min(s.Received, s.Committed)))
	})
	c.m.ObserveFlush(metrics.Flush{Events: len(p.Events), Applied: res.Applied, Skipped: res.Skipped, Quarantined: res.Quarantined,
		Lost: res.Lost, Rows: res.Rows, Duration: took, Cursor: res.Cursor, Lag: lag})
	c.log.Debug("flushed", logkeys.FirstSeq, firstSeq(p), logkeys.LastSeq, p.Last(), logkeys.Events, len(p.Events),
		logkeys.Rows, res.Rows, logkeys.Duration, took)
	select {
	case c.ackNow <- struct{}{}:
	default: // a wake is pending: that ack will carry this cursor
	}
}

// ack tells the collector that everything up to the cursor is stored, in
// its log's numbering and naming the log, so an old cursor never prunes a
// new log. A failure is harmless: the next ack covers it; the collector
// only keeps more.
func (c *Consumer) ack() {
	st := c.Status()
	if st.Committed <= st.Offset {
		return // nothing of this log stored yet
	}
	seq := st.Committed - st.Offset
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.conn.AckEvents(actx, &kickmonv1.AckEventsRequest{Seq: seq, LogId: st.LogID}); err != nil {
		c.log.Warn("acknowledging to the collector failed", logkeys.Seq, seq, logkeys.Err, kickapi.Explain(c.conn.Path(), err))
	}
}

// watch follows WatchEvents from pos, reconnecting with backoff, and
// closes out when ctx ends or the pipeline must stop (c.fatal).
func (c *Consumer) watch(ctx context.Context, pos store.Position, out chan<- item) {
	defer close(out)
	w := &watcher{c: c, pos: pos, sent: pos.Seq, out: out}
	b := c.backoff(backoff.Local)
	for ctx.Err() == nil {
		got, err := w.stream(ctx)
		c.m.SetConnected(false)
		c.update(func(s *Status) { s.Subscribed = false })
		if ctx.Err() != nil {
			return
		}
		if got {
			b.Succeeded(time.Now())
		}
		if kickapi.IsOutOfRange(err) {
			if first, ok := c.oldestRetained(ctx); ok && first > w.next() {
				c.log.Warn("the collector no longer holds events the writer needs; recording them as lost",
					logkeys.FirstSeq, w.next(), logkeys.LastSeq, first-1)
				if !w.send(ctx, item{skipTo: first - 1 + w.pos.Offset}) {
					return
				}
				continue
			}
		}
		if id, changed := w.logChanged(ctx, err); changed {
			if err := w.changeLog(ctx, id); err != nil {
				c.fatal = err
				return
			}
			b.Succeeded(time.Now())
			continue
		}
		msg := kickapi.Explain(c.conn.Path(), err).Error()
		wait := b.Failed(time.Now())
		if status.Code(err) == codes.FailedPrecondition {
			// Not a log change we can follow (the same log id, rewound:
			// a spool restored from a backup; or a collector without log
			// ids): waiting cannot fix it, an operator must. Say so, and
			// retry slowly in case the collector is fixed meanwhile.
			msg = "the collector's event log is behind the writer cursor (was its spool restored from a backup?); " +
				"move the collector's spool aside to start a new log, which the writer then follows: " + msg
			wait = b.Max // the long way: never at the quick reconnect pace
			c.log.Error("cannot follow the collector's event log", logkeys.Err, msg, logkeys.Seq, w.next(), logkeys.LogID, w.pos.LogID, logkeys.Backoff, wait)
		} else {
			c.log.Warn("event stream from the collector ended; reconnecting", logkeys.Err, msg, logkeys.Seq, w.next(), logkeys.Backoff, wait)
		}
		c.update(func(s *Status) { s.CollectorError = msg })
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// watcher is the state of watch: where it is in which log.
type watcher struct {
	c    *Consumer
	pos  store.Position // the log followed and its offset; pos.Seq is not kept current
	sent uint64         // the last seq handed to the loop, as stored
	out  chan<- item
}

// next is the next seq wanted, in the log's numbering.
func (w *watcher) next() uint64 { return w.sent - min(w.pos.Offset, w.sent) + 1 }

func (w *watcher) send(ctx context.Context, it item) bool {
	select {
	case w.out <- it:
	case <-ctx.Done():
		return false
	}
	if it.skipTo > 0 {
		w.sent = max(w.sent, it.skipTo)
	} else {
		w.sent = max(w.sent, it.events[len(it.events)-1].GetSeq())
	}
	return true
}

// logChanged tells whether err means the collector follows another log
// than the cursor, and which: a LOG_CHANGED answer, or a cursor without a
// log id beyond the end of the collector's log.
func (w *watcher) logChanged(ctx context.Context, err error) (string, bool) {
	if id, ok := kickapi.LogChanged(err); ok {
		if id == "" {
			id, _ = w.c.collectorLog(ctx)
		}
		return id, id != ""
	}
	if status.Code(err) == codes.FailedPrecondition && w.pos.LogID == "" {
		id, _ := w.c.collectorLog(ctx)
		return id, id != ""
	}
	return "", false
}

// changeLog follows the collector's new log id: it waits until everything
// received from the old log is committed, then moves the cursor (recording
// the gap), or returns an error wrapping ErrLogChanged when told to stop.
func (w *watcher) changeLog(ctx context.Context, id string) error {
	c := w.c
	if c.opts.StopOnLogChange {
		err := fmt.Errorf("%w from %s to %s (its spool was replaced) and KICKMON_ON_LOG_CHANGE=stop: "+
			"the writer stopped at seq %d of the old log; to follow the new log, run with KICKMON_ON_LOG_CHANGE=resync (the default), which records the replacement as a gap",
			ErrLogChanged, orUnknown(w.pos.LogID), id, w.next()-1)
		c.log.Error("the collector's event log changed; stopping as KICKMON_ON_LOG_CHANGE=stop says", logkeys.OldLogID, w.pos.LogID, logkeys.LogID, id)
		return err
	}
	c.log.Warn("the collector's event log changed; storing what was received from the old log, then following the new one",
		logkeys.OldLogID, w.pos.LogID, logkeys.LogID, id, logkeys.Seq, w.next()-1)
	for c.Status().Committed < w.sent {
		if !backoff.Sleep(ctx, 20*time.Millisecond) {
			return nil
		}
	}
	b := c.backoff(backoff.Transient)
	for {
		pos, err := c.st.SwitchLog(ctx, w.pos.LogID, id)
		if err == nil {
			w.pos, w.sent = pos, pos.Seq
			c.setPosition(pos)
			c.update(func(s *Status) { s.Received = max(s.Received, pos.Seq) })
			return nil
		}
		if errors.Is(err, store.ErrPositionMoved) {
			return fmt.Errorf("follow the collector's new event log: %w", err)
		}
		c.dbFailed(err)
		wait := b.Failed(time.Now())
		c.log.Warn("cannot record the event log change; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

func orUnknown(id string) string {
	if id == "" {
		return "(unknown)"
	}
	return id
}

// collectorLog asks the collector for its log id.
func (c *Consumer) collectorLog(ctx context.Context) (string, bool) {
	sp, ok := c.spoolStatus(ctx)
	return sp.GetLogId(), ok && sp.GetLogId() != ""
}

// oldestRetained asks the collector for the first seq it still holds (the
// seq after its last one when its log is empty).
func (c *Consumer) oldestRetained(ctx context.Context) (uint64, bool) {
	sp, ok := c.spoolStatus(ctx)
	if !ok {
		return 0, false
	}
	if sp.GetFirstSeq() != 0 {
		return sp.GetFirstSeq(), true
	}
	return sp.GetLastSeq() + 1, true
}

func (c *Consumer) spoolStatus(ctx context.Context) (*kickmonv1.SpoolStatus, bool) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.conn.GetStatus(actx, &kickmonv1.GetStatusRequest{})
	if err != nil {
		c.log.Warn("cannot ask the collector about its event log", logkeys.Err, kickapi.Explain(c.conn.Path(), err))
		return nil, false
	}
	return resp.GetStatus().GetSpool(), true
}

// stream runs one WatchEvents call; got reports whether the stream opened.
// Events are handed on with their seqs as stored (the log's + offset).
func (w *watcher) stream(ctx context.Context) (got bool, err error) {
	c := w.c
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.conn.WatchEvents(sctx, &kickmonv1.WatchEventsRequest{FromSeq: w.next(), LogId: w.pos.LogID}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	// The collector sends its header when it accepts the stream; a stream
	// refused at once (OUT_OF_RANGE, FAILED_PRECONDITION…) has none.
	md, err := s.Header()
	if err != nil {
		return false, err
	}
	if md == nil {
		_, err := s.Recv()
		return false, err
	}
	c.m.SetConnected(true)
	c.update(func(s *Status) { s.Subscribed, s.CollectorError = true, "" })
	if ids := md.Get(kickapi.HeaderLogID); len(ids) > 0 {
		if err := w.checkLog(ctx, ids[0]); err != nil {
			return true, err
		}
	}
	// A collector killed before our last ack reached it (or restarted)
	// would otherwise think the writer behind until the next event.
	c.ack()
	if c.opts.OnSubscribed != nil {
		c.subscribed.Do(c.opts.OnSubscribed)
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return true, err
		}
		if err := w.checkLog(ctx, resp.GetLogId()); err != nil {
			return true, err
		}
		evs := resp.GetEvents()
		for len(evs) > 0 && evs[0].GetSeq() < w.next() {
			evs = evs[1:] // already received
		}
		if len(evs) == 0 {
			continue
		}
		for _, e := range evs {
			e.Seq += w.pos.Offset
		}
		if !w.send(ctx, item{events: evs}) {
			return true, ctx.Err()
		}
	}
}

// checkLog compares the log id the collector sent (if any) with the
// cursor's: a cursor without one adopts it; another one is LOG_CHANGED.
func (w *watcher) checkLog(ctx context.Context, id string) error {
	switch {
	case id == "" || id == w.pos.LogID:
		return nil
	case w.pos.LogID != "":
		return kickapi.LogChangedError(w.pos.LogID, id) // a collector that ignored our log id
	}
	return w.adopt(ctx, id)
}

// adopt records that the cursor, which had no log id, belongs to log id.
func (w *watcher) adopt(ctx context.Context, id string) error {
	b := w.c.backoff(backoff.Transient)
	for {
		pos, err := w.c.st.AdoptLog(ctx, id)
		if err == nil {
			w.pos.LogID = pos.LogID
			w.c.update(func(s *Status) { s.LogID = pos.LogID })
			w.c.log.Info("the writer cursor now follows the collector's event log", logkeys.LogID, id)
			return nil
		}
		if errors.Is(err, store.ErrPositionMoved) || ctx.Err() != nil {
			return fmt.Errorf("adopt the collector's event log %s: %w", id, err)
		}
		w.c.dbFailed(err)
		wait := b.Failed(time.Now())
		w.c.log.Warn("cannot record the writer cursor's event log; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// backoff is the retry state of one loop retrying failures of class cl.
func (c *Consumer) backoff(cl backoff.Class) *backoff.Backoff {
	p := backoff.For(cl, 0)
	// Either override alone keeps the class's other bound (a zero Base
	// would make every wait zero: a busy retry loop).
	p.Max = cmp.Or(c.opts.MaxBackoff, p.Max)
	p.Base = min(cmp.Or(c.opts.MinBackoff, p.Base), p.Max)
	return &backoff.Backoff{Policy: p}
}
