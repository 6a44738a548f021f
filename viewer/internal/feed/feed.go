// Package feed is kickview's data side: it owns the gRPC client and the
// connection state, keeps an in-memory model of every streamer (a
// ListStreamers snapshot followed by WatchEvents from last_seq+1), polls
// GetStatus for source health, and resubscribes from the last seq after a
// disconnect. It knows nothing about tview: the UI reads immutable
// Snapshots and waits on Changed, which coalesces any number of changes
// into one wake-up.
package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/viewer/internal/logkeys"
	"google.golang.org/protobuf/proto"
)

// State is the connection state to the collector.
type State int

const (
	// Connecting: no data yet, first attempt in progress.
	Connecting State = iota
	// Connected: subscribed to WatchEvents, data is live.
	Connected
	// Disconnected: the stream broke; the data shown is the last known and
	// the feed is resubscribing from the last seq.
	Disconnected
)

func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Row is one streamer and when it last changed.
type Row struct {
	// Streamer is the streamer's full state; never modified after it is
	// published, so it can be read without locks.
	Streamer *kickmonv1.Streamer
	// Changed is when kickmon last saw the streamer change (the observed_at
	// of its last event, or the best time the list offered).
	Changed time.Time
}

// Entry is one line of the event log: an event, or a note of the viewer's
// own (connection changes, refresh results).
type Entry struct {
	// At is when it happened (the event's observed_at).
	At time.Time
	// Event is the event, nil for a note.
	Event *kickmonv1.Event
	// Note is the viewer's own message when Event is nil.
	Note string
	// Detail says what changed for STREAM_UPDATED (e.g. the new title).
	Detail string
}

// Snapshot is the model at one moment. Its slices are fresh copies; their
// elements are shared and must not be modified.
type Snapshot struct {
	State State
	// Err is why the feed is disconnected (nil when connected).
	Err error
	// Since is when State was entered.
	Since time.Time
	// Attempts counts failed attempts since the last connection.
	Attempts int
	// LastSeq is the seq of the last event applied.
	LastSeq uint64
	// Rows is every watched streamer, in no particular order.
	Rows []Row
	// Live counts live streamers.
	Live int
	// Log is the recent event log, oldest first.
	Log []Entry
	// Status is the collector's last status (nil before the first answer).
	Status *kickmonv1.CollectorStatus
	// StatusAt is when Status was fetched.
	StatusAt time.Time
	// StatusErr is the last GetStatus error, nil after a success.
	StatusErr error
	// Version increases with every change.
	Version uint64
}

// Options tune a Feed; zero values take defaults.
type Options struct {
	// Logger receives the feed's logs (default: discard).
	Logger *slog.Logger
	// Socket names the collector's socket in errors.
	Socket string
	// StatusEvery is the GetStatus period (default 2s).
	StatusEvery time.Duration
	// ConfirmEvery is how often confirmation times are refreshed from a
	// listing (default 15s): polls that confirm an unchanged state make no
	// event, so WatchEvents alone would let "last confirmed" go stale.
	ConfirmEvery time.Duration
	// MinBackoff and MaxBackoff bound the resubscribe delay (default the
	// shared policy for the collector's socket, backoff.Local: 100ms, 5s).
	MinBackoff, MaxBackoff time.Duration
	// LogSize is how many event log entries are kept (default 500).
	LogSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Feed is the viewer's model of the collector. Run drives it; the other
// methods are safe for concurrent use.
type Feed struct {
	client kickmonv1.CollectorServiceClient
	opts   Options
	log    *slog.Logger

	changed chan struct{}

	mu        sync.Mutex
	state     State
	err       error
	since     time.Time
	attempts  int
	needList  bool
	lastSeq   uint64
	rows      map[int64]Row
	live      int
	ring      []Entry // circular, len <= LogSize
	ringStart int
	status    *kickmonv1.CollectorStatus
	statusAt  time.Time
	statusErr error
	version   uint64
}

// New returns a feed reading from client; call Run to start it.
func New(client kickmonv1.CollectorServiceClient, opts Options) *Feed {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ConfirmEvery <= 0 {
		opts.ConfirmEvery = 15 * time.Second
	}
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = 2 * time.Second
	}
	local := backoff.For(backoff.Local, 0)
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = local.Base
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(local.Max, opts.MinBackoff)
	}
	if opts.LogSize <= 0 {
		opts.LogSize = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Feed{
		client:   client,
		opts:     opts,
		log:      opts.Logger.With(logkeys.Component, "feed"),
		changed:  make(chan struct{}, 1),
		state:    Connecting,
		since:    opts.Now(),
		needList: true,
		rows:     map[int64]Row{},
	}
}

// Changed receives a value after the model changed; any number of changes
// between two receives are coalesced into one.
func (f *Feed) Changed() <-chan struct{} { return f.changed }

func (f *Feed) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Snapshot returns a copy of the current model.
func (f *Feed) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Snapshot{
		State: f.state, Err: f.err, Since: f.since, Attempts: f.attempts,
		LastSeq: f.lastSeq, Live: f.live,
		Status: f.status, StatusAt: f.statusAt, StatusErr: f.statusErr,
		Version: f.version,
		Rows:    make([]Row, 0, len(f.rows)),
		Log:     make([]Entry, 0, len(f.ring)),
	}
	for _, r := range f.rows {
		s.Rows = append(s.Rows, r)
	}
	s.Log = append(s.Log, f.ring[f.ringStart:]...)
	s.Log = append(s.Log, f.ring[:f.ringStart]...)
	return s
}

// Run follows the collector until ctx ends: it loads the list, watches
// events, polls status, and on any break resubscribes from the last seq
// with jittered exponential backoff. It returns nil when ctx is cancelled.
func (f *Feed) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { f.pollStatus(ctx) })

	b := backoff.Backoff{Policy: backoff.Policy{Base: f.opts.MinBackoff, Max: f.opts.MaxBackoff}}
	for {
		connected, err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.setDisconnected(err)
		if connected {
			b.Succeeded(time.Now())
		}
		// Full jitter, so a restarted collector is not hit by every viewer
		// at the same instant.
		d := b.Failed(time.Now())
		f.log.Info("resubscribing", logkeys.Backoff, d.String(), logkeys.Err, err)
		if !backoff.Sleep(ctx, d) {
			return nil
		}
	}
}

// session loads the list if needed and follows WatchEvents until the
// stream breaks. connected reports whether the subscription was made.
func (f *Feed) session(ctx context.Context) (connected bool, err error) {
	f.mu.Lock()
	needList, from := f.needList, f.lastSeq+1
	f.mu.Unlock()

	if needList {
		resp, err := f.client.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
		if err != nil {
			return false, fmt.Errorf("list streamers: %w", f.explain(err))
		}
		f.load(resp)
		from = resp.GetLastSeq() + 1
	} else if _, err := f.client.GetStatus(ctx, &kickmonv1.GetStatusRequest{}); err != nil {
		// WatchEvents would not say the collector is unreachable until the
		// first Recv; a status call answers at once.
		return false, fmt.Errorf("reconnect: %w", f.explain(err))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := f.client.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: from})
	if err != nil {
		return false, fmt.Errorf("watch events from %d: %w", from, f.explain(err))
	}
	f.setConnected(from)
	for {
		resp, err := stream.Recv()
		if err != nil {
			if kickapi.IsOutOfRange(err) {
				f.mu.Lock()
				f.needList = true
				f.mu.Unlock()
				f.Note(fmt.Sprintf("events from seq %d were dropped by the collector; reloading the list", from))
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("collector closed the event stream")
			}
			return true, fmt.Errorf("watch events: %w", f.explain(err))
		}
		f.Apply(resp.GetEvents()...)
	}
}

func (f *Feed) explain(err error) error {
	if f.opts.Socket == "" {
		return err
	}
	return kickapi.Explain(f.opts.Socket, err)
}

// load replaces the model with a ListStreamers answer.
func (f *Feed) load(resp *kickmonv1.ListStreamersResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = make(map[int64]Row, len(resp.GetStreamers()))
	f.live = 0
	for _, st := range resp.GetStreamers() {
		f.rows[st.GetBroadcasterUserId()] = Row{Streamer: st, Changed: listChanged(st)}
		if isLive(st) {
			f.live++
		}
	}
	f.lastSeq = resp.GetLastSeq()
	f.needList = false
	f.version++
	f.log.Info("loaded streamers", logkeys.Count, len(resp.GetStreamers()), logkeys.Seq, f.lastSeq)
	f.notify()
}

// listChanged is the best guess of a listed streamer's last change.
func listChanged(st *kickmonv1.Streamer) time.Time {
	switch {
	case st.GetLiveSince() != nil:
		return st.GetLiveSince().AsTime()
	case st.GetSession().GetEndedAt() != nil:
		return st.GetSession().GetEndedAt().AsTime()
	case st.GetAddedAt() != nil:
		return st.GetAddedAt().AsTime()
	}
	return time.Time{}
}

func isLive(st *kickmonv1.Streamer) bool {
	return st.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE
}

// Apply applies events in seq order; events at or below the last applied
// seq are ignored, so a replay after reconnecting never applies one twice.
func (f *Feed) Apply(events ...*kickmonv1.Event) {
	if len(events) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	applied := 0
	for _, e := range events {
		if e.GetSeq() <= f.lastSeq {
			continue
		}
		if e.GetSeq() != f.lastSeq+1 && f.lastSeq != 0 {
			f.log.Warn("gap in event seqs", logkeys.Seq, e.GetSeq(), logkeys.FromSeq, f.lastSeq+1)
		}
		f.lastSeq = e.GetSeq()
		applied++
		f.applyLocked(e)
	}
	if applied > 0 {
		f.version++
		f.notify()
	}
}

func (f *Feed) applyLocked(e *kickmonv1.Event) {
	st := e.GetStreamer()
	at := f.opts.Now()
	if e.GetObservedAt() != nil {
		at = e.GetObservedAt().AsTime()
	}
	if st == nil {
		f.appendLocked(Entry{At: at, Event: e})
		return
	}
	id := st.GetBroadcasterUserId()
	old, had := f.rows[id]
	if had && isLive(old.Streamer) {
		f.live--
	}
	if st.GetRemoved() || e.GetKind() == kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED {
		delete(f.rows, id)
	} else {
		f.rows[id] = Row{Streamer: st, Changed: at}
		if isLive(st) {
			f.live++
		}
	}
	entry := Entry{At: at, Event: e}
	if e.GetKind() == kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED {
		// Viewer counts change on every poll; only title and category
		// changes are worth a line in the log.
		entry.Detail = updateDetail(old.Streamer, st)
		if entry.Detail == "" {
			return
		}
	}
	f.appendLocked(entry)
}

func updateDetail(old, cur *kickmonv1.Streamer) string {
	var parts []string
	if old == nil || old.GetTitle() != cur.GetTitle() {
		parts = append(parts, fmt.Sprintf("title %q", cur.GetTitle()))
	}
	if old == nil || old.GetCategoryName() != cur.GetCategoryName() {
		parts = append(parts, "category "+cur.GetCategoryName())
	}
	return strings.Join(parts, ", ")
}

func (f *Feed) appendLocked(e Entry) {
	if len(f.ring) < f.opts.LogSize {
		f.ring = append(f.ring, e)
		return
	}
	f.ring[f.ringStart] = e
	f.ringStart = (f.ringStart + 1) % len(f.ring)
}

// Note adds a line of the viewer's own to the event log.
func (f *Feed) Note(text string) {
	f.mu.Lock()
	f.appendLocked(Entry{At: f.opts.Now(), Note: text})
	f.version++
	f.mu.Unlock()
	f.notify()
}

func (f *Feed) setConnected(from uint64) {
	f.mu.Lock()
	was := f.state
	f.state, f.err, f.since, f.attempts = Connected, nil, f.opts.Now(), 0
	f.version++
	f.mu.Unlock()
	f.log.Info("subscribed", logkeys.FromSeq, from)
	if was == Disconnected {
		f.Note(fmt.Sprintf("reconnected; resumed events from seq %d", from))
	}
	f.notify()
}

func (f *Feed) setDisconnected(err error) {
	f.mu.Lock()
	was := f.state
	if was != Disconnected {
		f.since = f.opts.Now()
	}
	f.state, f.err = Disconnected, err
	f.attempts++
	f.version++
	f.mu.Unlock()
	f.log.Warn("disconnected", logkeys.Err, err)
	if was == Connected {
		f.Note("disconnected: " + err.Error())
	}
	f.notify()
}

// pollStatus fetches the collector's status every StatusEvery, and the
// confirmation times every ConfirmEvery, until ctx ends.
func (f *Feed) pollStatus(ctx context.Context) {
	t := time.NewTicker(f.opts.StatusEvery)
	defer t.Stop()
	confirmed := f.opts.Now()
	for {
		if f.opts.Now().Sub(confirmed) >= f.opts.ConfirmEvery {
			confirmed = f.opts.Now()
			f.refreshConfirmations(ctx)
		}
		cctx, cancel := context.WithTimeout(ctx, f.opts.StatusEvery)
		resp, err := f.client.GetStatus(cctx, &kickmonv1.GetStatusRequest{})
		cancel()
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		if err != nil {
			f.statusErr = fmt.Errorf("get status: %w", f.explain(err))
		} else {
			f.status, f.statusAt, f.statusErr = resp.GetStatus(), f.opts.Now(), nil
		}
		f.version++
		f.mu.Unlock()
		f.notify()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshConfirmations takes newer last-confirmed times from a listing,
// leaving everything else to the event stream.
func (f *Feed) refreshConfirmations(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, f.opts.ConfirmEvery)
	defer cancel()
	resp, err := f.client.ListStreamers(cctx, &kickmonv1.ListStreamersRequest{})
	if err != nil {
		return // the event stream reports connection trouble
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for _, st := range resp.GetStreamers() {
		row, ok := f.rows[st.GetBroadcasterUserId()]
		if !ok || !st.GetLastConfirmedAt().AsTime().After(row.Streamer.GetLastConfirmedAt().AsTime()) {
			continue
		}
		upd := proto.Clone(row.Streamer).(*kickmonv1.Streamer)
		upd.LastConfirmedAt = st.GetLastConfirmedAt()
		row.Streamer = upd
		f.rows[st.GetBroadcasterUserId()] = row
		changed = true
	}
	if changed {
		f.version++
		f.notify()
	}
}

// Refresh asks the collector to check the given streamers now, or every
// watched streamer when slugs is empty, and notes the outcome in the log.
func (f *Feed) Refresh(ctx context.Context, slugs ...string) error {
	resp, err := f.client.RefreshStreamers(ctx, &kickmonv1.RefreshStreamersRequest{Slugs: slugs})
	if err != nil {
		err = fmt.Errorf("refresh: %w", f.explain(err))
		f.Note(err.Error())
		return err
	}
	var failed []string
	for _, r := range resp.GetResults() {
		if r.GetError() != "" {
			failed = append(failed, r.GetSlug()+": "+r.GetError())
		}
	}
	ok := len(resp.GetResults()) - len(failed)
	what := "all streamers"
	if len(slugs) > 0 {
		what = strings.Join(slugs, ", ")
	}
	f.log.Info("refresh requested", logkeys.Slugs, slugs, logkeys.Count, ok)
	note := fmt.Sprintf("refresh requested for %s (%d checked)", what, ok)
	if len(failed) > 0 {
		note += "; failed: " + strings.Join(failed, "; ")
	}
	f.Note(note)
	if len(failed) > 0 {
		return fmt.Errorf("refresh: %s", strings.Join(failed, "; "))
	}
	return nil
}
