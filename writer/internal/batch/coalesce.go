package batch

import (
	"cmp"
	"slices"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Rows is a run of events reduced to the row changes one flush makes: at
// most one change per streamer and per session (the highest seq wins), and
// the coverage gaps to open and close, in the order the events describe.
type Rows struct {
	// Events are the events, one per seq, ascending (for status_events).
	Events []*kickmonv1.Event
	// Streamers has, per broadcaster_user_id, the event with the highest
	// seq (its Streamer is the state to store), ordered by user id.
	Streamers []*kickmonv1.Event
	// Sessions has, per session_id, the newest state of that session.
	Sessions []Session
	// Closes closes gaps that were open before this run.
	Closes []GapClose
	// Gaps are gaps opened during this run; End is zero while still open.
	Gaps []Gap
}

// Session is the newest state of one session in a run.
type Session struct {
	Seq        uint64
	UserID     int64
	ObservedAt time.Time
	Session    *kickmonv1.Session
}

// CoverageKey names one source's view of one streamer.
type CoverageKey struct {
	UserID int64
	Source kickmonv1.Source
}

// Gap is a time when a source could not see a streamer.
type Gap struct {
	CoverageKey
	Reason   string
	Start    time.Time
	OpenSeq  uint64
	End      time.Time // zero while open
	CloseSeq uint64    // 0 while open
}

// GapClose ends the open gap of a key, opened by an earlier run.
type GapClose struct {
	CoverageKey
	End      time.Time
	CloseSeq uint64
}

// SessionOf returns the session an event is about: the event's own, or for
// STREAM_* events without one, the streamer's current session.
func SessionOf(e *kickmonv1.Event) *kickmonv1.Session {
	if s := e.GetSession(); s != nil {
		return s
	}
	switch e.GetKind() {
	case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
		return e.GetStreamer().GetSession()
	}
	return nil
}

// CoverageTime is when a coverage change happened: the entry's since, else
// when kickmon observed the event.
func CoverageTime(e *kickmonv1.Event) time.Time {
	if s := e.GetCoverage().GetSince(); s != nil {
		return s.AsTime()
	}
	return e.GetObservedAt().AsTime()
}

// Coalesce reduces events (any order, duplicates allowed) to Rows.
func Coalesce(events []*kickmonv1.Event) Rows {
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b *kickmonv1.Event) int { return cmp.Compare(a.GetSeq(), b.GetSeq()) })
	evs = slices.CompactFunc(evs, func(a, b *kickmonv1.Event) bool { return a.GetSeq() == b.GetSeq() })

	var r Rows
	r.Events = evs
	streamers := map[int64]*kickmonv1.Event{}
	sessions := map[string]Session{}
	type cov struct {
		touched bool
		open    int // index into r.Gaps of the gap opened in this run, or -1
	}
	covs := map[CoverageKey]*cov{}
	for _, e := range evs {
		uid := e.GetStreamer().GetBroadcasterUserId()
		streamers[uid] = e // ascending seq: the last one wins
		if s := SessionOf(e); s != nil {
			sessions[s.GetSessionId()] = Session{Seq: e.GetSeq(), UserID: uid, ObservedAt: e.GetObservedAt().AsTime(), Session: s}
		}
		if e.GetKind() != kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED || e.GetCoverage() == nil {
			continue
		}
		k := CoverageKey{UserID: uid, Source: e.GetCoverage().GetSource()}
		c := covs[k]
		if c == nil {
			c = &cov{open: -1}
			covs[k] = c
		}
		at := CoverageTime(e)
		switch {
		case e.GetCoverage().GetBlind() && c.open < 0:
			r.Gaps = append(r.Gaps, Gap{CoverageKey: k, Reason: e.GetCoverage().GetReason(), Start: at, OpenSeq: e.GetSeq()})
			c.open = len(r.Gaps) - 1
		case !e.GetCoverage().GetBlind() && c.open >= 0:
			r.Gaps[c.open].End, r.Gaps[c.open].CloseSeq = at, e.GetSeq()
			c.open = -1
		case !e.GetCoverage().GetBlind() && !c.touched:
			r.Closes = append(r.Closes, GapClose{CoverageKey: k, End: at, CloseSeq: e.GetSeq()})
		}
		c.touched = true
	}
	for _, e := range streamers {
		r.Streamers = append(r.Streamers, e)
	}
	slices.SortFunc(r.Streamers, func(a, b *kickmonv1.Event) int {
		return cmp.Compare(a.GetStreamer().GetBroadcasterUserId(), b.GetStreamer().GetBroadcasterUserId())
	})
	for _, s := range sessions {
		r.Sessions = append(r.Sessions, s)
	}
	slices.SortFunc(r.Sessions, func(a, b Session) int { return cmp.Compare(a.Session.GetSessionId(), b.Session.GetSessionId()) })
	return r
}
