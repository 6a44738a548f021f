// Package consumer is the writer's pipeline: it follows the collector's
// WatchEvents stream from the committed cursor, batches events (group
// commit), writes each batch through the store, and acknowledges committed
// seqs to the collector. It reconnects with backoff when the collector
// restarts, turns OUT_OF_RANGE into a recorded gap, keeps retrying while
// PostgreSQL is down (holding back the stream so the collector's spool keeps
// the events), and drains what it holds on shutdown.
package consumer

import (
	"context"
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
)

// Options tune the pipeline. Zero values take the defaults noted.
type Options struct {
	BatchSize    int           // flush at this many pending events (10)
	MaxBatch     int           // most events per flush (5000)
	Interval     time.Duration // flush when the oldest pending event waited this long (100ms)
	FlushTimeout time.Duration // per attempt (30s)
	DrainTimeout time.Duration // on shutdown, to write what is held (10s)
	// MinBackoff and MaxBackoff, when set, replace the shared retry policy
	// (tests); by default it follows the class: the collector's socket
	// (backoff.Local: 100 ms to 5 s), the database (backoff.Transient:
	// 1 s to 30 s).
	MinBackoff, MaxBackoff time.Duration
	// OnSubscribed is called once, the first time the event stream opens.
	OnSubscribed func()
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

	mu     sync.Mutex
	status Status
}

// New returns a pipeline reading from conn and writing to st; m may be nil.
func New(conn *kickapi.Conn, st *store.Store, log *slog.Logger, m *metrics.Metrics, opts Options) *Consumer {
	opts.defaults()
	c := &Consumer{conn: conn, st: st, log: log, m: m, opts: opts, born: time.Now()}
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
// It returns an error only if it cannot start (the cursor cannot be read
// before ctx ends).
func (c *Consumer) Run(ctx context.Context) error {
	cursor, err := c.readCursor(ctx)
	if err != nil {
		return err
	}
	c.update(func(s *Status) { s.Committed, s.Received = cursor, cursor })
	c.log.Info("following the collector's events", logkeys.Socket, c.conn.Path(), logkeys.Seq, cursor+1)

	items := make(chan item, 16)
	var wg sync.WaitGroup
	wg.Go(func() { c.watch(ctx, cursor+1, items) })
	defer wg.Wait()

	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	return c.loop(ctx, flushCtx, cancelFlush, items, &wg)
}

func (c *Consumer) readCursor(ctx context.Context) (uint64, error) {
	b := c.backoff(backoff.Transient)
	for {
		cursor, err := c.st.Cursor(ctx)
		if err == nil {
			return cursor, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("read cursor: %w", err)
		}
		c.dbFailed(err)
		wait := b.Failed(time.Now())
		c.log.Warn("cannot read the writer cursor; retrying", logkeys.Err, err, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return 0, fmt.Errorf("read cursor: %w", err)
		}
	}
}

// loop owns the batcher and runs at most one flush at a time, in seq
// order. Under saturation it pipelines: while a flush is in flight and a
// full batch (MaxBatch events) is already waiting, that batch is taken and
// encoded (store.Prepare) so that its transaction starts the moment the
// previous one has committed and been acknowledged; the database no longer
// waits for the encoder. Below saturation batches are taken only when the
// previous flush is done, so that group commit lets them grow.
func (c *Consumer) loop(ctx, flushCtx context.Context, cancelFlush context.CancelFunc, items <-chan item, flushers *sync.WaitGroup) error {
	b := batch.New(c.opts.BatchSize, c.opts.MaxBatch, c.opts.Interval)
	done := make(chan flushResult, 1)
	prepared := make(chan *store.Prepared, 1)
	inflight := false
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
			next, inflight = nil, true
			flushers.Go(func() { done <- c.flush(flushCtx, pp) })
		case !inflight && !preparing && (b.Ready(now) || (draining && b.Len() > 0)):
			p := b.Take(now)
			inflight = true
			flushers.Go(func() { done <- c.flush(flushCtx, store.Prepare(p)) })
		}
		if inflight && !preparing && next == nil && b.Len() >= c.opts.MaxBatch {
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

func firstSeq(p batch.Pending) uint64 {
	if len(p.Events) > 0 {
		return p.Events[0].GetSeq()
	}
	return p.SkipTo
}

// flush writes pp, retrying with backoff until it commits or ctx ends,
// then acknowledges the new cursor to the collector.
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
	c.ack(res.Cursor)
}

// ack tells the collector that everything up to cursor is stored. A failure
// is harmless: the next ack covers it; the collector only keeps more.
func (c *Consumer) ack(cursor uint64) {
	if cursor == 0 {
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.conn.AckEvents(actx, &kickmonv1.AckEventsRequest{Seq: cursor}); err != nil {
		c.log.Warn("acknowledging to the collector failed", logkeys.Seq, cursor, logkeys.Err, kickapi.Explain(c.conn.Path(), err))
	}
}

// watch follows WatchEvents from next, reconnecting with backoff, and
// closes out when ctx ends.
func (c *Consumer) watch(ctx context.Context, next uint64, out chan<- item) {
	defer close(out)
	b := c.backoff(backoff.Local)
	for ctx.Err() == nil {
		got, err := c.stream(ctx, &next, out)
		c.m.SetConnected(false)
		c.update(func(s *Status) { s.Subscribed = false })
		if ctx.Err() != nil {
			return
		}
		if got {
			b.Succeeded(time.Now())
		}
		if kickapi.IsOutOfRange(err) {
			if first, ok := c.oldestRetained(ctx); ok && first > next {
				c.log.Warn("the collector no longer holds events the writer needs; recording them as lost",
					logkeys.FirstSeq, next, logkeys.LastSeq, first-1)
				select {
				case out <- item{skipTo: first - 1}:
				case <-ctx.Done():
					return
				}
				next = first
				continue
			}
		}
		msg := kickapi.Explain(c.conn.Path(), err).Error()
		c.update(func(s *Status) { s.CollectorError = msg })
		wait := b.Failed(time.Now())
		c.log.Warn("event stream from the collector ended; reconnecting", logkeys.Err, msg, logkeys.Seq, next, logkeys.Backoff, wait)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// oldestRetained asks the collector for the first seq it still holds (the
// seq after its last one when its log is empty).
func (c *Consumer) oldestRetained(ctx context.Context) (uint64, bool) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.conn.GetStatus(actx, &kickmonv1.GetStatusRequest{})
	if err != nil {
		c.log.Warn("cannot ask the collector for its oldest event", logkeys.Err, kickapi.Explain(c.conn.Path(), err))
		return 0, false
	}
	sp := resp.GetStatus().GetSpool()
	if sp.GetFirstSeq() != 0 {
		return sp.GetFirstSeq(), true
	}
	return sp.GetLastSeq() + 1, true
}

// stream runs one WatchEvents call, advancing *next; got reports whether
// the stream opened.
func (c *Consumer) stream(ctx context.Context, next *uint64, out chan<- item) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.conn.WatchEvents(sctx, &kickmonv1.WatchEventsRequest{FromSeq: *next}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	c.m.SetConnected(true)
	c.update(func(s *Status) { s.Subscribed, s.CollectorError = true, "" })
	// A collector killed before our last ack reached it (or restarted)
	// would otherwise think the writer behind until the next event.
	c.ack(c.Status().Committed)
	if c.opts.OnSubscribed != nil {
		c.subscribed.Do(c.opts.OnSubscribed)
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return true, err
		}
		evs := resp.GetEvents()
		for len(evs) > 0 && evs[0].GetSeq() < *next {
			evs = evs[1:] // already received
		}
		if len(evs) == 0 {
			continue
		}
		*next = evs[len(evs)-1].GetSeq() + 1
		select {
		case out <- item{events: evs}:
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// backoff is the retry state of one loop retrying failures of class cl.
func (c *Consumer) backoff(cl backoff.Class) *backoff.Backoff {
	p := backoff.For(cl, 0)
	if c.opts.MaxBackoff > 0 {
		p = backoff.Policy{Base: c.opts.MinBackoff, Max: c.opts.MaxBackoff}
	}
	return &backoff.Backoff{Policy: p}
}
