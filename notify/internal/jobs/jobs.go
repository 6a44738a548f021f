// Package jobs holds kicknotify's River workers and the outbox pump. The
// writer records each notable event in kickmon.notify_outbox in the
// transaction that stores it; the pump moves those rows into River's queue
// as EventArgs jobs (deleting them in the transaction that inserts the
// jobs: exactly once), and EventArgs jobs an older writer enqueued itself
// are worked alike. The fan-out worker turns it into one DeliveryArgs job per matching target
// (unique per target and seq, so a retried fan-out never doubles a
// message), and the delivery worker sends it, retried with backoff,
// honouring a target's Retry-After. Delivery is at least once on the
// wire; the idempotency key lets receivers make it exactly once.
package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kickmon/kickmon/notify/internal/config"
	"github.com/kickmon/kickmon/notify/internal/logkeys"
	"github.com/kickmon/kickmon/notify/internal/message"
	"github.com/kickmon/kickmon/notify/internal/metrics"
	"github.com/kickmon/kickmon/notify/internal/targets"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// River's schema (migrated by kickwriter, writer/internal/store/outbox.go),
// and the queue and job kind of the fan-out jobs: the pump enqueues them
// from the outbox, and writers before the outbox enqueued them themselves.
const (
	Schema      = "kickmon_river"
	EventsQueue = "events"
	EventKind   = "kickmon_event"
	// DeliveriesQueue and DeliveryKind are kicknotify's own jobs.
	DeliveriesQueue = "deliveries"
	DeliveryKind    = "kickmon_delivery"
	// MaxAttempts bounds a delivery's attempts: with the backoff capped at
	// 10 minutes, about two and a half hours of trying.
	MaxAttempts = 20
)

// EventArgs is a fan-out job: one notable event, by seq (the event is read
// from kickmon.status_events, stored with its outbox row).
type EventArgs struct {
	Seq     uint64   `json:"seq" river:"unique"`
	Changes []string `json:"changes"`
	// Event is the whole event (protojson) in jobs of writers before the
	// args were made small; such jobs are worked as they are.
	Event json.RawMessage `json:"event,omitempty"`
}

// Kind is the River job kind.
func (EventArgs) Kind() string { return EventKind }

// DeliveryArgs is one notice for one target.
type DeliveryArgs struct {
	Target string `json:"target" river:"unique"`
	Seq    uint64 `json:"seq" river:"unique"`
	// Notice is the message kind: the change, or back_live.
	Notice            string          `json:"notice"`
	Changes           []string        `json:"changes"`
	BroadcasterUserID int64           `json:"broadcaster_user_id"`
	At                time.Time       `json:"at"` // when the change happened
	Event             json.RawMessage `json:"event"`
}

// Kind is the River job kind.
func (DeliveryArgs) Kind() string { return DeliveryKind }

// InsertOpts makes a delivery unique per target and seq.
func (DeliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DeliveriesQueue, MaxAttempts: MaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Options configure New.
type Options struct {
	Targets []*config.Target
	Sender  *targets.Sender
	Log     *slog.Logger
	// RiverLog receives River's own messages (default Log).
	RiverLog *slog.Logger
	Metrics  *metrics.Metrics
	// DeliveryWorkers is how many deliveries run at once (default 8).
	DeliveryWorkers int
	// Timeout bounds one attempt (default 30 s). A job still running after
	// twice that (its process died) is retried.
	Timeout time.Duration
	// OutboxBatch is the most outbox rows moved in one transaction
	// (default DefaultOutboxBatch); OutboxPoll how often the pump looks
	// without a NOTIFY (default DefaultOutboxPoll).
	OutboxBatch int
	OutboxPoll  time.Duration
}

// Notifier runs the workers on a River client.
type Notifier struct {
	pool    *pgxpool.Pool
	client  *river.Client[pgx.Tx]
	targets map[string]*config.Target
	order   []*config.Target
	sender  *targets.Sender
	log     *slog.Logger
	m       *metrics.Metrics

	mu   sync.Mutex
	last map[string]*targetLast // by target name

	outboxBatch int
	outboxPoll  time.Duration
	stopPump    context.CancelFunc
	pumpDone    chan struct{}
	// pumpBeat is when the pump's loop last came round (Unix nanoseconds),
	// for Alive.
	pumpBeat atomic.Int64
	// beforeStmt, when set (tests), runs before each step of MoveOutbox.
	beforeStmt func(ctx context.Context, name string)
}

type targetLast struct {
	err         string
	errAt       time.Time
	deliveredAt time.Time
}

// New builds the River client (not started) with the workers.
func New(pool *pgxpool.Pool, o Options) (*Notifier, error) {
	timeout := cmp.Or(o.Timeout, 30*time.Second)
	n := &Notifier{pool: pool, targets: map[string]*config.Target{}, order: o.Targets, sender: o.Sender,
		log: o.Log, m: o.Metrics, last: map[string]*targetLast{},
		outboxBatch: cmp.Or(o.OutboxBatch, DefaultOutboxBatch), outboxPoll: cmp.Or(o.OutboxPoll, DefaultOutboxPoll)}
	for _, t := range o.Targets {
		n.targets[t.Name] = t
		n.last[t.Name] = &targetLast{}
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &fanOut{n: n})
	river.AddWorker(workers, &deliver{n: n})
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema: Schema,
		Queues: map[string]river.QueueConfig{
			// One at a time, in seq order: a start looks for the notification before it.
			EventsQueue:     {MaxWorkers: 1},
			DeliveriesQueue: {MaxWorkers: cmp.Or(o.DeliveryWorkers, 8)},
		},
		Workers: workers,
		// Jobs are announced by LISTEN/NOTIFY; polling is the fallback
		// for a missed announcement (River's default, 1 s, shows in p99).
		FetchPollInterval:    250 * time.Millisecond,
		RetryPolicy:          deliveryBackoff{},
		Logger:               cmp.Or(o.RiverLog, o.Log),
		JobTimeout:           timeout,
		RescueStuckJobsAfter: 2 * timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	n.client = c
	return n, nil
}

// Start starts working jobs and the outbox pump (until ctx ends or Stop).
func (n *Notifier) Start(ctx context.Context) error {
	if err := n.client.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	pctx, stop := context.WithCancel(ctx)
	n.stopPump, n.pumpDone = stop, make(chan struct{})
	n.beat()
	go func() {
		defer close(n.pumpDone)
		n.pump(pctx)
	}()
	return nil
}

// Stop stops the pump (a move in progress rolls back: its rows stay in
// the outbox), lets running jobs finish for up to grace, then cancels them
// (a cancelled delivery is retried later: at least once).
func (n *Notifier) Stop(grace time.Duration) {
	if n.stopPump != nil {
		n.stopPump()
		<-n.pumpDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := n.client.Stop(ctx); err != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_ = n.client.StopAndCancel(cctx)
	}
}

// deliveryBackoff retries after 1 s, 2 s, 4 s, … up to 10 minutes, each wait
// between half and all of that (jitter, so a recovered target is not hit
// by every retry at once).
type deliveryBackoff struct{}

func (deliveryBackoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := time.Second << min(max(job.Attempt-1, 0), 10)
	d = min(d, 10*time.Minute)
	return time.Now().Add(d/2 + rand.N(d/2+1))
}

// fanOut turns an event into deliveries.
type fanOut struct {
	river.WorkerDefaults[EventArgs]
	n *Notifier
}

func (w *fanOut) Work(ctx context.Context, job *river.Job[EventArgs]) error {
	raw := job.Args.Event
	if len(raw) == 0 {
		var err error
		if raw, err = w.n.storedEvent(ctx, job.Args.Seq); err != nil {
			return err
		}
	}
	var e kickmonv1.Event
	if err := protojson.Unmarshal(raw, &e); err != nil {
		return river.JobCancel(fmt.Errorf("seq %d: undecodable event: %w", job.Args.Seq, err))
	}
	at := eventTime(&e)
	var params []river.InsertManyParams
	for _, t := range w.n.order {
		change, ok := Match(t, job.Args.Changes, &e)
		if !ok {
			continue
		}
		if t.Quiet.Contains(at) {
			w.n.log.Debug("quiet hours: not notified", logkeys.Target, t.Name, logkeys.Seq, job.Args.Seq)
			w.n.m.Delivered(t.Name, metrics.OutcomeQuiet, 0)
			continue
		}
		notice := change
		if change == message.Live && t.BackLiveWithin > 0 {
			recent, err := w.n.recentNotice(ctx, t, e.GetStreamer().GetBroadcasterUserId(), job.Args.Seq, at)
			if err != nil {
				return err
			}
			if recent {
				notice = message.BackLive
			}
		}
		params = append(params, river.InsertManyParams{Args: DeliveryArgs{
			Target: t.Name, Seq: job.Args.Seq, Notice: notice, Changes: job.Args.Changes,
			BroadcasterUserID: e.GetStreamer().GetBroadcasterUserId(), At: at, Event: raw,
		}})
	}
	if len(params) == 0 {
		return nil
	}
	if _, err := w.n.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("seq %d: enqueue %d deliveries: %w", job.Args.Seq, len(params), err)
	}
	return nil
}

// storedEvent reads event seq back from kickmon.status_events as protojson
// with proto field names (the webhook body). The row holds the streamer's
// state after the event; a STREAM_* event's session is that state's
// session, as the collector sends it. A missing row (removed by retention
// while kicknotify was down) cancels the job: retrying cannot bring it back.
func (n *Notifier) storedEvent(ctx context.Context, seq uint64) (json.RawMessage, error) {
	var (
		kind, source, state string
		kick                *time.Time
		observed            time.Time
		prevSlug, coverage  *string
	)
	err := n.pool.QueryRow(ctx, `SELECT kind, source, kick_time, observed_at, previous_slug, coverage::text, state::text
FROM kickmon.status_events WHERE seq = $1`, int64(seq)).Scan(&kind, &source, &kick, &observed, &prevSlug, &coverage, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, river.JobCancel(fmt.Errorf("seq %d: not in kickmon.status_events (removed by retention?)", seq))
	}
	if err != nil {
		return nil, fmt.Errorf("seq %d: read event: %w", seq, err)
	}
	e := &kickmonv1.Event{
		Seq:          seq,
		Kind:         kickmonv1.EventKind(kickmonv1.EventKind_value["EVENT_KIND_"+kind]),
		Source:       kickmonv1.Source(kickmonv1.Source_value["SOURCE_"+strings.ToUpper(source)]),
		ObservedAt:   timestamppb.New(observed),
		Streamer:     &kickmonv1.Streamer{},
		PreviousSlug: deref(prevSlug),
	}
	if kick != nil {
		e.KickTime = timestamppb.New(*kick)
	}
	lenient := protojson.UnmarshalOptions{DiscardUnknown: true}
	if err := lenient.Unmarshal([]byte(state), e.Streamer); err != nil {
		return nil, river.JobCancel(fmt.Errorf("seq %d: undecodable stored state: %w", seq, err))
	}
	if coverage != nil {
		e.Coverage = &kickmonv1.Coverage{}
		if err := lenient.Unmarshal([]byte(*coverage), e.Coverage); err != nil {
			return nil, river.JobCancel(fmt.Errorf("seq %d: undecodable stored coverage: %w", seq, err))
		}
	}
	switch e.Kind {
	case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
		e.Session = e.Streamer.GetSession()
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("seq %d: encode event: %w", seq, err)
	}
	return raw, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Match reports whether target t wants an event with these changes, and
// which change it is told about (the first of the event's changes that t
// subscribes to).
func Match(t *config.Target, changes []string, e *kickmonv1.Event) (string, bool) {
	i := slices.IndexFunc(changes, func(c string) bool { return slices.Contains(t.Events, c) })
	if i < 0 {
		return "", false
	}
	st := e.GetStreamer()
	if len(t.Streamers) > 0 && !slices.Contains(t.Streamers, strings.ToLower(st.GetSlug())) &&
		(e.GetPreviousSlug() == "" || !slices.Contains(t.Streamers, strings.ToLower(e.GetPreviousSlug()))) {
		return "", false
	}
	if len(t.Categories) > 0 {
		cat := st.GetCategoryName()
		if cat == "" {
			cat = e.GetSession().GetCategoryName()
		}
		if !slices.ContainsFunc(t.Categories, func(c string) bool { return strings.EqualFold(c, cat) }) {
			return "", false
		}
	}
	return changes[i], true
}

// eventTime is when the change happened: Kick's time, else kickmon's.
func eventTime(e *kickmonv1.Event) time.Time {
	if e.GetKickTime() != nil {
		return e.GetKickTime().AsTime()
	}
	return e.GetObservedAt().AsTime()
}

// recentNotice reports whether t was notified (or is being notified)
// about the streamer within t.BackLiveWithin before at, by an earlier event.
func (n *Notifier) recentNotice(ctx context.Context, t *config.Target, uid int64, seq uint64, at time.Time) (bool, error) {
	var found bool
	err := n.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+Schema+`.river_job
WHERE kind = $1 AND args->>'target' = $2 AND (args->>'broadcaster_user_id')::bigint = $3
  AND (args->>'seq')::numeric < $4 AND (args->>'at')::timestamptz >= $5 AND state NOT IN ('cancelled', 'discarded'))`,
		DeliveryKind, t.Name, uid, seq, at.Add(-t.BackLiveWithin)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("look up the last notification to %s: %w", t.Name, err)
	}
	return found, nil
}

// deliver sends one delivery.
type deliver struct {
	river.WorkerDefaults[DeliveryArgs]
	n *Notifier
}

func (w *deliver) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	a := job.Args
	t := w.n.targets[a.Target]
	if t == nil {
		return river.JobCancel(fmt.Errorf("target %q is no longer in the configuration", a.Target))
	}
	var e kickmonv1.Event
	if err := protojson.Unmarshal(a.Event, &e); err != nil {
		return river.JobCancel(fmt.Errorf("seq %d: undecodable event: %w", a.Seq, err))
	}
	notice := message.FromEvent(a.Notice, a.Changes, &e)
	text, err := message.Render(t.Templates[a.Notice], notice)
	if err != nil {
		w.n.failed(t.Name, err)
		return river.JobCancel(err)
	}
	log := w.n.log.With(logkeys.Target, t.Name, logkeys.Seq, a.Seq, logkeys.Notice, a.Notice, logkeys.Attempt, job.Attempt)
	status, err := w.n.sender.Send(ctx, targets.Delivery{Target: t, Notice: notice, Text: text, Event: a.Event, Key: targets.Key(t.Name, a.Seq)})
	if err == nil {
		w.n.mu.Lock()
		w.n.last[t.Name].deliveredAt = time.Now()
		w.n.mu.Unlock()
		latency := time.Since(e.GetObservedAt().AsTime())
		w.n.m.Delivered(t.Name, metrics.OutcomeDelivered, latency)
		log.Info("delivered", logkeys.Status, status, logkeys.Latency, latency)
		return nil
	}
	w.n.failed(t.Name, err)
	var te *targets.Error
	if errors.As(err, &te) {
		switch {
		case te.RetryAfter > 0:
			w.n.m.Delivered(t.Name, metrics.OutcomeRateLimited, 0)
			log.Warn("target is rate limiting; retrying when it says", logkeys.Err, err, logkeys.Backoff, te.RetryAfter)
			return river.JobSnooze(te.RetryAfter)
		case te.Permanent:
			w.n.m.Delivered(t.Name, metrics.OutcomeFailed, 0)
			log.Error("target refused the delivery; giving up", logkeys.Err, err)
			return river.JobCancel(err)
		}
	}
	w.n.m.Delivered(t.Name, metrics.OutcomeRetry, 0)
	if job.Attempt >= job.MaxAttempts {
		log.Error("delivery failed for the last time; giving up", logkeys.Err, err)
	} else {
		log.Warn("delivery failed; will retry", logkeys.Err, err)
	}
	return err
}

func (n *Notifier) failed(target string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.last[target].err, n.last[target].errAt = err.Error(), time.Now()
}

// SendTest sends a test message to target now, outside the queue.
func (n *Notifier) SendTest(ctx context.Context, target string) (string, error) {
	t := n.targets[target]
	if t == nil {
		return "", fmt.Errorf("%w: no target named %q", ErrNoTarget, target)
	}
	notice := message.Sample(message.Test)
	notice.Seq = 0
	notice.At = time.Now().UTC()
	text, err := message.Render(t.Templates[message.Test], notice)
	if err != nil {
		return "", err
	}
	ev, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(&kickmonv1.Event{
		Streamer: &kickmonv1.Streamer{Slug: notice.Slug, Title: text}})
	key := fmt.Sprintf("%s:test-%d", t.Name, time.Now().UnixNano())
	return n.sender.Send(ctx, targets.Delivery{Target: t, Notice: notice, Text: text, Event: ev, Key: key})
}

// ErrNoTarget means SendTest was given an unknown name.
var ErrNoTarget = errors.New("unknown target")

// Status is the queue's backlog and each target's deliveries (counts of
// the last 24 hours, River's retention of finished jobs).
func (n *Notifier) Status(ctx context.Context) (*kickmonv1.GetNotifierStatusResponse, error) {
	out := &kickmonv1.GetNotifierStatusResponse{}
	var oldest *time.Time
	err := n.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = $1),
  min(created_at) FROM `+Schema+`.river_job
WHERE state IN ('available', 'pending', 'running', 'retryable', 'scheduled')`, EventKind).Scan(&out.EventsPending, &oldest)
	if err != nil {
		return nil, fmt.Errorf("read the queue's backlog: %w", err)
	}
	// Rows still in the outbox are events not yet fanned out too.
	rows, outboxOldest, err := n.OutboxBacklog(ctx)
	if err != nil {
		return nil, err
	}
	out.EventsPending += rows
	age := time.Duration(0)
	if !outboxOldest.IsZero() {
		age = time.Since(outboxOldest)
	}
	n.m.SetOutbox(rows, age) // the outbox's own gauges, read here once
	if !outboxOldest.IsZero() && (oldest == nil || outboxOldest.Before(*oldest)) {
		oldest = &outboxOldest
	}
	if oldest != nil {
		out.OldestPendingAt = timestamppb.New(*oldest)
	}
	deliveries, err := n.pool.Query(ctx, `SELECT args->>'target', state::text, count(*) FROM `+Schema+`.river_job
WHERE kind = $1 AND (finalized_at IS NULL OR finalized_at > now() - interval '24 hours') GROUP BY 1, 2`, DeliveryKind)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	counts := map[string]map[string]int64{}
	var name, state string
	var c int64
	if _, err := pgx.ForEachRow(deliveries, []any{&name, &state, &c}, func() error {
		if counts[name] == nil {
			counts[name] = map[string]int64{}
		}
		counts[name][state] = c
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.order {
		s := counts[t.Name]
		ts := &kickmonv1.TargetStatus{
			Name: t.Name, Type: t.Type,
			Pending:   s["available"] + s["pending"] + s["running"],
			Retrying:  s["retryable"] + s["scheduled"],
			Delivered: s["completed"],
			Failed:    s["discarded"] + s["cancelled"],
		}
		if l := n.last[t.Name]; l != nil {
			ts.LastError = l.err
			if !l.errAt.IsZero() {
				ts.LastErrorAt = timestamppb.New(l.errAt)
			}
			if !l.deliveredAt.IsZero() {
				ts.LastDeliveredAt = timestamppb.New(l.deliveredAt)
			}
		}
		out.Targets = append(out.Targets, ts)
	}
	return out, nil
}
