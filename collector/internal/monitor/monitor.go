// Package monitor is the collector's per-streamer state machine: it fuses
// observations from every source (poller, Pusher, webhooks) into stream
// sessions and turns every change into a kickmon.v1 Event.
//
// The Monitor is pure: no goroutines, no I/O, no clock (every call carries
// its time). It is not safe for concurrent use; one engine loop owns it,
// appends the returned events to the spool (which assigns seq), schedules
// the out-of-turn checks and subscribes the channels it returns, and calls
// Tick when NextDeadline passes.
//
// Rules the design leaves open, chosen here:
//   - A push (or webhook) offline report is never final: it asks for an
//     out-of-turn check and opens a grace window of Config.OfflineGrace. A
//     poll that says offline ends the session at once; a live report seen
//     after the offline report closes the window silently (a flap).
//   - Kick's API lags Kick's own state by seconds (kick-api.md §1.6): a
//     poll asked less than Config.APILag (default 5 s) after a push or
//     webhook report opened the session, before any poll saw it live, may
//     not list the stream yet. Its offline is "not yet confirmed": no event,
//     and Tick asks for another check once APILag has passed (not at once:
//     the API would most likely give the same lagging answer).
//   - A grace window that expires ends the session with source
//     SOURCE_COLLECTOR; ended_at is Kick's end time if a source gave one,
//     else the time the first source reported the stream offline.
//   - Push's provisional start time and an official one are the same
//     session when within Config.StartTolerance (default 2 min) while that
//     session is open; an official start time earlier than that is also the
//     same stream (push was late). Two official start times are the same
//     session when within 1 s.
//   - A provisional (push) report never ends a session whose start time is
//     official: a different start time from push is only a hint, answered
//     with an out-of-turn check; the official API decides.
//   - An ended session is reopened (STREAM_UPDATED, no ended_at, LIVE) only
//     by an official start time (poll, webhook) equal to its start (±1 s;
//     for a session whose start stayed provisional: from StartTolerance
//     before it to 1 s after it, and the start is corrected), at most
//     Config.ContinueWithin (default 10 min) after it ended. Later reports
//     with that start time are stale and ignored, except for the first
//     report after Add or Restore. A push live report never reopens: its
//     created_at after the end starts a new provisional session (a restart);
//     one at or before the end is stale (ignored, with an out-of-turn check,
//     so the official API can continue the session if it is the same one).
//   - Start times never repeat for a streamer (the database keys sessions
//     on it): a new session, or a corrected start, must be more than 1 s
//     after the start of every other session kickmon made for the
//     streamer; reports that would break this are about an earlier stream
//     and ignored. One exception resolves the case where Kick's official
//     start for a new provisional session is the start of the session just
//     before it (Kick says it was the same stream after all): the
//     provisional session ends at its own start (a STREAM_ENDED with
//     ended_at = started_at, source the official one), and the earlier
//     session is reopened with a STREAM_UPDATED, within ContinueWithin of
//     its end. If the provisional session already ended, it keeps its end
//     and the earlier session is reopened the same way.
//     Restore knows only each streamer's last session (the snapshot has no
//     previous one), so this resolution and the start-time guard do not
//     reach back past a restart.
//   - A live report with a newer start time while a session is open ends
//     the old session (ended_at: the pending offline report, else the new
//     session's start) and starts a new one.
//   - Removing a live streamer ends its session with ended_at = the removal
//     time and source SOURCE_COLLECTOR, so no session stays open in the
//     database. A removed streamer is remembered, and re-adding it keeps its
//     last session, so the same start time later continues that session
//     instead of creating a second one with the same key.
//   - Title, category and viewers are taken only while live (an offline
//     channel's title is not a stream's); each real change is one
//     STREAM_UPDATED. Observations older (ObservedAt) than the last one
//     applied from the same source are ignored, as are offline reports
//     older than the latest live report, and metadata older than the
//     metadata already applied.
//   - A streamer without a channel id is blind for the realtime feed with
//     reason "no channel id", set in the STREAMER_ADDED state (no separate
//     event); a realtime coverage report whose reason starts so refines it
//     (and applies only to such streamers), other realtime reports skip
//     them; learning the channel id clears it with a COVERAGE_CHANGED.
//   - The realtime feed has one coverage entry per streamer, whichever
//     provider (Pusher, Centrifugo) reports: a report from the other
//     provider takes the entry over (a COVERAGE_CHANGED when its source,
//     blindness or reason changes). A source
//     that reports on a streamer gets a coverage entry (seeing) carrying its
//     last_confirmed_at; going from no entry to seeing is not a change.
package monitor

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Defaults for Config fields left zero.
const (
	DefaultOfflineGrace   = 30 * time.Second
	DefaultContinueWithin = 10 * time.Minute
	DefaultStartTolerance = 2 * time.Minute
	DefaultAPILag         = 5 * time.Second
)

// officialTolerance is how far apart two official start times of one
// session may be (webhook and REST API round differently).
const officialTolerance = time.Second

// ReasonNoChannelID is the realtime coverage reason of a streamer whose
// channel id is unknown; a source may add why after it ("no channel id:
// livestreams endpoint gone (410)").
const ReasonNoChannelID = "no channel id"

// Config tunes a Monitor. The zero value is usable.
type Config struct {
	// OfflineGrace is how long an unconfirmed push/webhook offline report
	// waits for the official API before the session ends (default 30s).
	OfflineGrace time.Duration
	// ContinueWithin is how long after a session ended a live report with
	// its start time continues it (default 10 min).
	ContinueWithin time.Duration
	// StartTolerance is how far push's provisional start time may be from
	// the official one for both to be one session (default 2 min).
	StartTolerance time.Duration
	// APILag is how long after a push or webhook report opened a session
	// an offline answer of the official API is not trusted yet (default 5s).
	APILag time.Duration
	// NewSessionID returns a new session id (default: a ULID, monotonic).
	NewSessionID func() string
}

// Identity is who an operator adds.
type Identity struct {
	UserID    int64
	Slug      string
	ChannelID int64 // 0 when unknown
}

// ChannelLearned says a streamer's channel id became known (or changed),
// so the engine can subscribe it on Pusher.
type ChannelLearned struct {
	UserID    int64
	ChannelID int64
}

// Result is what one call changed.
type Result struct {
	// Events are the changes, in order; Seq is left 0 for the spool.
	Events []*kickmonv1.Event
	// Check lists streamers the poller should check out of turn.
	Check []int64
	// Channels lists channel ids newly learned.
	Channels []ChannelLearned
}

func (r *Result) check(userID int64) {
	if !slices.Contains(r.Check, userID) {
		r.Check = append(r.Check, userID)
	}
}

// Monitor holds the state of every watched streamer.
type Monitor struct {
	cfg       Config
	streamers map[int64]*entry
	bySlug    map[string]int64
	pending   map[int64]*entry              // streamers with an open grace window
	rechecks  map[int64]*entry              // streamers with a check due at recheck
	removed   map[int64]*kickmonv1.Streamer // last state of removed streamers
	nLive     int                           // entries with an open session
	realtime  kickmonv1.Source              // the realtime provider that reported coverage last
	// changes counts the calls that may have changed a watched streamer's
	// state (entry.changed is the count at its last one), so List can
	// give only what changed after an earlier list (see Changes).
	changes uint64
}

// entry is one streamer: its public state plus what the rules need.
type entry struct {
	st      *kickmonv1.Streamer
	changed uint64 // Monitor.changes when st may last have changed

	open        bool      // a session is open (st.State is LIVE)
	start       time.Time // start of the open or last session
	provisional bool      // start is push's created_at
	end         time.Time // end of the last session while not open

	// prev is the ended session before the current (or last) one, which an
	// official start time equal to its own may still reopen; nil if none.
	prev *kickmonv1.Session
	// floor is the latest start of this streamer's sessions other than the
	// current (or last) one: new or corrected start times must be later.
	floor time.Time

	// unconfirmed is when a push or webhook report opened the session that
	// no poll has seen live yet (zero otherwise); recheck is when a poll
	// offline seen before unconfirmed+APILag asks for another check.
	unconfirmed instant
	recheck     instant

	// fresh: no status observation since Add/Restore at watchSince.
	fresh      bool
	watchSince instant

	lastSeen    [numSources]instant // latest status ObservedAt per source
	lastLive    instant             // latest live report for the current state
	lastOffline instant             // latest offline report for the current state
	lastMeta    instant             // ObservedAt of the metadata applied
	lastSlug    instant             // ObservedAt of the slug applied

	pend *pendingOffline
}

// pendingOffline is an unconfirmed offline report: a grace window.
type pendingOffline struct {
	firstAt  time.Time        // when the first source reported offline
	source   kickmonv1.Source // that source
	kickEnd  time.Time        // Kick's end time, if a source gave one
	deadline time.Time
}

const numSources = int(kickmonv1.Source_SOURCE_CENTRIFUGO) + 1

// New returns an empty Monitor.
func New(cfg Config) *Monitor {
	if cfg.OfflineGrace <= 0 {
		cfg.OfflineGrace = DefaultOfflineGrace
	}
	if cfg.ContinueWithin <= 0 {
		cfg.ContinueWithin = DefaultContinueWithin
	}
	if cfg.StartTolerance <= 0 {
		cfg.StartTolerance = DefaultStartTolerance
	}
	if cfg.APILag <= 0 {
		cfg.APILag = DefaultAPILag
	}
	if cfg.NewSessionID == nil {
		cfg.NewSessionID = func() string { return ulid.Make().String() }
	}
	return &Monitor{
		cfg:       cfg,
		streamers: map[int64]*entry{},
		bySlug:    map[string]int64{},
		pending:   map[int64]*entry{},
		rechecks:  map[int64]*entry{},
		removed:   map[int64]*kickmonv1.Streamer{},
	}
}

// Restore loads the state saved before a restart (each Streamer with its
// open or last session). Removed streamers are remembered for a re-add.
// now is when watching resumes: a session found later that started before
// now is observed_late. The Result asks for a check of every streamer that
// was live and lists every known channel id; it has no events. Restore
// takes ownership of streamers (the spool decodes them fresh; cloning 100k
// of them was a second of a cold start).
func (m *Monitor) Restore(streamers []*kickmonv1.Streamer, now time.Time) Result {
	var r Result
	for _, s := range streamers {
		if s.Removed {
			m.removed[s.BroadcasterUserId] = s
			continue
		}
		e := m.adopt(s, now)
		if e.open {
			// Each streamer once: r.check's duplicate search made a
			// restore of 30k live streamers quadratic (a second).
			r.Check = append(r.Check, s.BroadcasterUserId)
		}
		if s.ChannelId != 0 {
			r.Channels = append(r.Channels, ChannelLearned{UserID: s.BroadcasterUserId, ChannelID: s.ChannelId})
		}
	}
	return r
}

// adopt makes st the state of a watched streamer.
func (m *Monitor) adopt(st *kickmonv1.Streamer, now time.Time) *entry {
	e := &entry{st: st, fresh: true, watchSince: instantOf(now)}
	m.touch(e)
	if old, ok := m.streamers[st.BroadcasterUserId]; ok {
		m.setOpen(old, false) // replaced: no longer counted
	}
	if st.State == kickmonv1.LiveState_LIVE_STATE_UNSPECIFIED {
		st.State = kickmonv1.LiveState_LIVE_STATE_UNKNOWN
	}
	if s := st.Session; s != nil {
		e.start = s.StartedAt.AsTime()
		e.provisional = s.StartedAtProvisional
		if s.EndedAt == nil && st.State == kickmonv1.LiveState_LIVE_STATE_LIVE {
			m.setOpen(e, true)
		} else {
			if s.EndedAt == nil { // inconsistent snapshot: close it where it was last seen
				s.EndedAt = proto.Clone(st.LastConfirmedAt).(*timestamppb.Timestamp) // never share: setTS updates in place
			}
			e.end = s.EndedAt.AsTime()
		}
	}
	if !e.open && st.State == kickmonv1.LiveState_LIVE_STATE_LIVE {
		st.State = kickmonv1.LiveState_LIVE_STATE_UNKNOWN
	}
	if !e.open {
		st.LiveSince = nil
	}
	if st.ChannelId == 0 && realtimeCoverage(st) == nil {
		st.Coverage = insertCoverage(st.Coverage, &kickmonv1.Coverage{
			Source: m.rtSource(), Blind: true, Reason: ReasonNoChannelID, Since: ts(now),
		})
	}
	m.streamers[st.BroadcasterUserId] = e
	m.bySlug[st.Slug] = st.BroadcasterUserId
	delete(m.removed, st.BroadcasterUserId)
	return e
}

// Add puts a streamer on the watch list (STREAMER_ADDED, source OPERATOR)
// and asks for a check. Adding a watched streamer emits nothing, except
// that a different slug is a rename and a new channel id is learned.
func (m *Monitor) Add(id Identity, now time.Time) Result {
	var r Result
	if id.UserID == 0 {
		return r
	}
	if e, ok := m.streamers[id.UserID]; ok {
		if id.Slug != "" && id.Slug != e.st.Slug && !now.Before(e.lastSlug.Time()) {
			m.rename(e, id.Slug, kickmonv1.Source_SOURCE_OPERATOR, time.Time{}, now, &r)
		}
		if id.ChannelID != 0 && id.ChannelID != e.st.ChannelId {
			m.learnChannel(e, id.ChannelID, kickmonv1.Source_SOURCE_OPERATOR, now, &r)
		}
		return r
	}
	st := m.removed[id.UserID]
	if st == nil {
		st = &kickmonv1.Streamer{BroadcasterUserId: id.UserID}
	}
	st.Slug = id.Slug
	if id.ChannelID != 0 {
		st.ChannelId = id.ChannelID
	}
	st.State = kickmonv1.LiveState_LIVE_STATE_UNKNOWN
	st.ViewerCount = 0
	st.LastConfirmedAt = nil
	st.Coverage = nil
	st.AddedAt = ts(now)
	st.Removed = false
	e := m.adopt(st, now)
	e.lastSlug = instantOf(now)
	r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, kickmonv1.Source_SOURCE_OPERATOR, time.Time{}, now))
	r.check(id.UserID)
	if st.ChannelId != 0 {
		r.Channels = append(r.Channels, ChannelLearned{UserID: id.UserID, ChannelID: st.ChannelId})
	}
	return r
}

// Remove takes a streamer off the watch list: an open session ends at now
// (STREAM_ENDED, source COLLECTOR), then STREAMER_REMOVED (source
// OPERATOR) carries removed=true. Unknown ids are ignored.
func (m *Monitor) Remove(userID int64, now time.Time) Result {
	var r Result
	e, ok := m.streamers[userID]
	if !ok {
		return r
	}
	if e.open {
		m.endSession(e, ending{at: now, source: kickmonv1.Source_SOURCE_COLLECTOR, observedAt: now, confirmedAt: now}, &r)
	}
	e.st.Removed = true
	r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, kickmonv1.Source_SOURCE_OPERATOR, time.Time{}, now))
	delete(m.streamers, userID)
	delete(m.pending, userID)
	delete(m.rechecks, userID)
	if m.bySlug[e.st.Slug] == userID {
		delete(m.bySlug, e.st.Slug)
	}
	m.removed[userID] = e.st
	return r
}

// Streamer returns a copy of a watched streamer's state.
func (m *Monitor) Streamer(userID int64) (*kickmonv1.Streamer, bool) {
	e, ok := m.streamers[userID]
	if !ok {
		return nil, false
	}
	return clone(e.st), true
}

// BySlug returns a copy of the watched streamer with that slug.
func (m *Monitor) BySlug(slug string) (*kickmonv1.Streamer, bool) {
	id, ok := m.bySlug[slug]
	if !ok {
		return nil, false
	}
	return m.Streamer(id)
}

// Streamers returns copies of every watched streamer, sorted by slug.
func (m *Monitor) Streamers() []*kickmonv1.Streamer { return m.List(0, false) }

// Changes is the monitor's change count: List(Changes(), …) later gives
// the streamers whose state may have changed in between.
func (m *Monitor) Changes() uint64 { return m.changes }

// List returns copies of the watched streamers whose state may have
// changed after the change count since (0: every one). Full states are
// sorted by slug; with confirmationsOnly each copy holds only the user id
// and the confirmation times (its own, and source and last_confirmed_at
// of each coverage entry), sorted by user id: what the writer's refresh of
// confirmation times reads, at a fraction of the cost of full states.
func (m *Monitor) List(since uint64, confirmationsOnly bool) []*kickmonv1.Streamer {
	if confirmationsOnly {
		return m.confirmations(since)
	}
	out := make([]*kickmonv1.Streamer, 0, len(m.streamers))
	for _, e := range m.streamers {
		if e.changed > since {
			out = append(out, clone(e.st))
		}
	}
	slices.SortFunc(out, func(a, b *kickmonv1.Streamer) int {
		return cmp.Or(cmp.Compare(a.Slug, b.Slug), cmp.Compare(a.BroadcasterUserId, b.BroadcasterUserId))
	})
	return out
}

// confirmations is List's confirmationsOnly. The copies come from a few
// slabs, not an allocation each: 100k streamers made 500k allocations.
func (m *Monitor) confirmations(since uint64) []*kickmonv1.Streamer {
	var changed []*entry
	covs, times := 0, 0
	for _, e := range m.streamers {
		if e.changed > since {
			changed = append(changed, e)
			covs += len(e.st.Coverage)
			times += 1 + len(e.st.Coverage)
		}
	}
	slices.SortFunc(changed, func(a, b *entry) int { return cmp.Compare(a.st.BroadcasterUserId, b.st.BroadcasterUserId) })
	sts := make([]kickmonv1.Streamer, len(changed))
	cs := make([]kickmonv1.Coverage, covs)
	cps := make([]*kickmonv1.Coverage, covs)
	stamps := make([]timestamppb.Timestamp, times)
	copyTS := func(t *timestamppb.Timestamp) *timestamppb.Timestamp {
		if t == nil {
			return nil
		}
		c := &stamps[0]
		stamps = stamps[1:]
		c.Seconds, c.Nanos = t.Seconds, t.Nanos
		return c
	}
	out := make([]*kickmonv1.Streamer, len(changed))
	for i, e := range changed {
		st := &sts[i]
		st.BroadcasterUserId, st.LastConfirmedAt = e.st.BroadcasterUserId, copyTS(e.st.LastConfirmedAt)
		if n := len(e.st.Coverage); n > 0 {
			st.Coverage, cps = cps[:n:n], cps[n:]
			for j, c := range e.st.Coverage {
				cc := &cs[0]
				cs = cs[1:]
				cc.Source, cc.LastConfirmedAt = c.Source, copyTS(c.LastConfirmedAt)
				st.Coverage[j] = cc
			}
		}
		out[i] = st
	}
	return out
}

// touch records that e's state may change in the current call.
func (m *Monitor) touch(e *entry) {
	m.changes++
	e.changed = m.changes
}

// Watched lists every watched streamer's user id and channel id (0 when
// unknown), in no order, without copying their states.
func (m *Monitor) Watched() []ChannelLearned {
	out := make([]ChannelLearned, 0, len(m.streamers))
	for id, e := range m.streamers {
		out = append(out, ChannelLearned{UserID: id, ChannelID: e.st.ChannelId})
	}
	return out
}

// Len is the number of watched streamers.
func (m *Monitor) Len() int { return len(m.streamers) }

// Live is the number of watched streamers with an open session (kept as
// sessions open and end: counting 100k entries per status would not be).
func (m *Monitor) Live() int { return m.nLive }

// setOpen opens or closes e's session, keeping the live count.
func (m *Monitor) setOpen(e *entry, open bool) {
	switch {
	case open && !e.open:
		m.nLive++
	case !open && e.open:
		m.nLive--
	}
	e.open = open
}

// NextDeadline is the earliest pending grace expiry or due recheck, if any.
func (m *Monitor) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, e := range m.pending {
		if next.IsZero() || e.pend.deadline.Before(next) {
			next = e.pend.deadline
		}
	}
	for _, e := range m.rechecks {
		if next.IsZero() || e.recheck.Time().Before(next) {
			next = e.recheck.Time()
		}
	}
	return next, !next.IsZero()
}

// Tick ends the sessions whose grace window expired by now without the
// official API confirming live (source COLLECTOR), and asks for the checks
// due (see Config.APILag).
func (m *Monitor) Tick(now time.Time) Result {
	var r Result
	var rechecks []int64
	for id, e := range m.rechecks {
		if !now.Before(e.recheck.Time()) {
			rechecks = append(rechecks, id)
		}
	}
	slices.Sort(rechecks)
	for _, id := range rechecks {
		m.streamers[id].recheck = 0
		delete(m.rechecks, id)
		r.check(id)
	}
	var due []int64
	for id, e := range m.pending {
		if !now.Before(e.pend.deadline) {
			due = append(due, id)
		}
	}
	slices.Sort(due)
	for _, id := range due {
		e := m.streamers[id]
		p := e.pend
		m.endSession(e, ending{
			at:          cmp.Or(p.kickEnd, p.firstAt),
			source:      kickmonv1.Source_SOURCE_COLLECTOR,
			observedAt:  now,
			confirmedAt: p.firstAt,
		}, &r)
	}
	return r
}

func (m *Monitor) rename(e *entry, slug string, src kickmonv1.Source, kickTime, at time.Time, r *Result) {
	m.touch(e)
	old := e.st.Slug
	id := e.st.BroadcasterUserId
	e.st.Slug = slug
	e.lastSlug = instantOf(at)
	if m.bySlug[old] == id {
		delete(m.bySlug, old)
	}
	m.bySlug[slug] = id
	ev := e.event(kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED, src, kickTime, at)
	ev.PreviousSlug = old
	r.Events = append(r.Events, ev)
}

func (m *Monitor) learnChannel(e *entry, channelID int64, src kickmonv1.Source, at time.Time, r *Result) {
	m.touch(e)
	e.st.ChannelId = channelID
	r.Channels = append(r.Channels, ChannelLearned{UserID: e.st.BroadcasterUserId, ChannelID: channelID})
	if c := realtimeCoverage(e.st); c != nil && c.Blind && strings.HasPrefix(c.Reason, ReasonNoChannelID) {
		m.setCoverage(e, c.Source, false, "", src, time.Time{}, at, r)
	}
}

// event builds an event carrying a copy of the streamer's current state.
func (e *entry) event(kind kickmonv1.EventKind, src kickmonv1.Source, kickTime, observedAt time.Time) *kickmonv1.Event {
	ev := &kickmonv1.Event{
		Kind:       kind,
		Streamer:   clone(e.st),
		Source:     src,
		KickTime:   ts(kickTime),
		ObservedAt: ts(observedAt),
	}
	switch kind {
	case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
		if e.st.Session != nil {
			ev.Session = proto.Clone(e.st.Session).(*kickmonv1.Session)
		}
	}
	return ev
}

func clone(s *kickmonv1.Streamer) *kickmonv1.Streamer {
	return proto.Clone(s).(*kickmonv1.Streamer)
}

// ts converts a time, the zero time to nil (unset).
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// setTS sets *p to t, reusing the Timestamp already there: every poll
// confirms 100k streamers, and a new Timestamp each time was most of the
// monitor's garbage. The monitor's protos are never shared (events and
// queries get clones), so updating in place is safe.
func setTS(p **timestamppb.Timestamp, t time.Time) {
	if *p == nil || t.IsZero() {
		*p = ts(t)
		return
	}
	(*p).Seconds, (*p).Nanos = t.Unix(), int32(t.Nanosecond())
}

// instant is a time as Unix nanoseconds, 0 for the zero time: an entry
// keeps 14 of them, and at 24 bytes a time.Time made entries twice the
// size (27 MB at 100k streamers). Only the collector's own observation
// times are kept so (years 1678 to 2262); Kick's session times stay
// time.Time.
type instant int64

func instantOf(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

// Time is i as a time.Time (the zero time for 0).
func (i instant) Time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
