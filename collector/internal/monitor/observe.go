package monitor

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"

	"github.com/kickmon/kickmon/collector/internal/observation"
)

// Observe applies one observation. Observations about streamers that are
// not watched are ignored.
func (m *Monitor) Observe(o observation.Observation) Result {
	var r Result
	switch o.Kind {
	case observation.Status:
		m.observeStatus(o, &r)
	case observation.Coverage:
		m.observeCoverage(o, &r)
	}
	return r
}

func (m *Monitor) observeStatus(o observation.Observation, r *Result) {
	e, ok := m.streamers[o.UserID]
	if !ok || o.Source <= 0 || int(o.Source) >= numSources {
		return
	}
	if o.ObservedAt.Before(e.lastSeen[o.Source].Time()) {
		return // this source already told us something newer
	}
	e.lastSeen[o.Source] = instantOf(o.ObservedAt)
	m.touch(e)
	m.touchCoverage(e, o.Source, o.ObservedAt)

	if o.Slug != "" && o.Slug != e.st.Slug && !o.ObservedAt.Before(e.lastSlug.Time()) {
		m.rename(e, o.Slug, o.Source, o.KickTime, o.ObservedAt, r)
	}
	if o.ChannelID != 0 && o.ChannelID != e.st.ChannelId {
		m.learnChannel(e, o.ChannelID, o.Source, o.ObservedAt, r)
	}
	switch o.Live {
	case observation.Live:
		m.live(e, o, r)
	case observation.Offline:
		m.offline(e, o, r)
	default:
		if !e.open {
			r.check(o.UserID) // metadata of a stream we think is not live
			break
		}
		if m.applyMeta(e, o) {
			r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, o.Source, o.KickTime, o.ObservedAt))
		}
	}
	e.fresh = false
}

// startRelation is how a reported start time relates to a known one.
type startRelation int

const (
	sameStart startRelation = iota
	newerStart
	olderStart
)

func (m *Monitor) relate(known time.Time, knownProvisional bool, t time.Time, provisional bool) startRelation {
	tol := officialTolerance
	if knownProvisional || provisional {
		tol = m.cfg.StartTolerance
	}
	switch d := t.Sub(known); {
	case d > tol:
		return newerStart
	case d < -tol:
		return olderStart
	}
	return sameStart
}

func (m *Monitor) live(e *entry, o observation.Observation, r *Result) {
	start, prov := o.StartedAt, o.Provisional
	if start.IsZero() {
		if e.open { // live, start not given: confirms the open session
			m.continueLive(e, o, false, r)
			return
		}
		start, prov = cmp.Or(o.KickTime, o.ObservedAt), true
	}
	if prov {
		r.check(e.st.BroadcasterUserId) // let the official API confirm the start time
	}
	switch {
	case e.open:
		m.liveOpen(e, o, start, prov, r)
	case e.st.Session != nil:
		m.liveEnded(e, o, start, prov, r)
	default:
		m.startSession(e, o, start, prov, r)
	}
}

// liveOpen applies a live report with a start time while a session is open.
func (m *Monitor) liveOpen(e *entry, o observation.Observation, start time.Time, prov bool, r *Result) {
	switch m.relate(e.start, e.provisional, start, prov) {
	case sameStart:
		if e.provisional && !prov {
			m.correct(e, o, start, r)
			return
		}
		m.continueLive(e, o, false, r)
	case newerStart:
		if prov && !e.provisional {
			return // push disagrees with the official start: a hint only, the check decides
		}
		if !m.unused(e, start) {
			return // a session before the open one had this start: not a new stream
		}
		m.endImplied(e, o, start, r)
		m.startSession(e, o, start, prov, r)
	case olderStart:
		if e.provisional && !prov {
			m.correct(e, o, start, r) // push saw the stream late, or it is the previous stream
		}
		// else: a report about an earlier stream
	}
}

// correct applies Kick's official start time to the open provisional
// session: the start of the session before it means Kick says both are one
// stream (the provisional one ends at its own start, the earlier one
// continues); a start at or before any other session's is about an earlier
// stream; anything else corrects the start.
func (m *Monitor) correct(e *entry, o observation.Observation, start time.Time, r *Result) {
	if m.isPrev(e, start) {
		if m.resumable(e, o) {
			m.endSession(e, ending{at: e.start, source: o.Source, observedAt: o.ObservedAt, confirmedAt: o.ObservedAt}, r)
			m.resumePrev(e, o, start, r)
		}
		return
	}
	if !m.unused(e, start) {
		return
	}
	m.setStart(e, start, false)
	m.continueLive(e, o, true, r)
}

// liveEnded applies a live report with a start time while no session is
// open and the last one ended.
func (m *Monitor) liveEnded(e *entry, o observation.Observation, start time.Time, prov bool, r *Result) {
	if prov {
		if start.After(e.end) && m.unused(e, start) {
			m.startSession(e, o, start, true, r) // a restart after the end
		}
		return // else stale, or the same stream after a drop: the check decides
	}
	if m.isPrev(e, start) {
		if m.resumable(e, o) {
			m.resumePrev(e, o, start, r)
		}
		return
	}
	if m.sameEnded(e, start) {
		if o.ObservedAt.Before(e.lastOffline.Time()) || (!e.fresh && o.ObservedAt.Sub(e.end) > m.cfg.ContinueWithin) {
			return // stale report about the ended session
		}
		if e.provisional && !m.unused(e, start) {
			return
		}
		m.reopen(e, o, start, false, r)
		return
	}
	if start.After(e.start) && m.unused(e, start) {
		m.startSession(e, o, start, false, r)
	}
	// else: a report about an earlier stream
}

// sameEnded reports whether an official start time is the ended last
// session's: within 1 s of an official start, or from StartTolerance before
// to 1 s after a provisional one (push's created_at follows Kick's start).
func (m *Monitor) sameEnded(e *entry, start time.Time) bool {
	lo := e.start.Add(-officialTolerance)
	if e.provisional {
		lo = e.start.Add(-m.cfg.StartTolerance)
	}
	return !start.Before(lo) && !start.After(e.start.Add(officialTolerance))
}

// isPrev reports whether an official start time is the start of the ended
// session before the current (or last) one.
func (m *Monitor) isPrev(e *entry, start time.Time) bool {
	if e.prev == nil {
		return false
	}
	d := start.Sub(e.prev.StartedAt.AsTime())
	return d >= -officialTolerance && d <= officialTolerance
}

// resumable reports whether the previous session may still be continued by
// a report observed then.
func (m *Monitor) resumable(e *entry, o observation.Observation) bool {
	return !o.ObservedAt.Before(e.lastOffline.Time()) && o.ObservedAt.Sub(e.prev.EndedAt.AsTime()) <= m.cfg.ContinueWithin
}

// unused reports whether start is more than 1 s after the start of every
// session of the streamer other than the current (or last) one.
func (m *Monitor) unused(e *entry, start time.Time) bool {
	return e.floor.IsZero() || start.After(e.floor.Add(officialTolerance))
}

// resumePrev makes the ended previous session the last one again and
// reopens it; the (ended) session that followed it stays as it is.
func (m *Monitor) resumePrev(e *entry, o observation.Observation, start time.Time, r *Result) {
	p := e.prev
	e.floor = later(e.floor, e.start)
	e.prev = nil
	e.st.Session = p
	e.start, e.provisional, e.end = p.StartedAt.AsTime(), p.StartedAtProvisional, p.EndedAt.AsTime()
	e.lastMeta = 0
	m.reopen(e, o, start, false, r)
}

// setStart changes the open session's start time.
func (m *Monitor) setStart(e *entry, start time.Time, provisional bool) {
	e.start, e.provisional = start, provisional
	e.st.Session.StartedAt = ts(start)
	e.st.Session.StartedAtProvisional = provisional
	e.st.LiveSince = ts(start)
}

// continueLive applies a live report about the open session: confirmation,
// an end to a pending offline report seen before it, metadata. changed
// forces a STREAM_UPDATED (the start time was corrected).
func (m *Monitor) continueLive(e *entry, o observation.Observation, changed bool, r *Result) {
	e.lastLive = instantOf(later(e.lastLive.Time(), o.ObservedAt))
	if o.Source == kickmonv1.Source_SOURCE_POLL {
		e.unconfirmed = 0 // the API lists the stream now
		e.recheck = 0
		delete(m.rechecks, e.st.BroadcasterUserId)
	}
	setTS(&e.st.LastConfirmedAt, later(e.st.LastConfirmedAt.AsTime(), o.ObservedAt))
	if e.pend != nil && o.ObservedAt.After(e.pend.firstAt) {
		e.pend = nil // a flap: live again after the offline report
		delete(m.pending, e.st.BroadcasterUserId)
	}
	if m.applyMeta(e, o) || changed {
		r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, o.Source, o.KickTime, o.ObservedAt))
	}
}

// applyMeta applies title, category and viewers of a live streamer, and
// reports whether anything changed.
func (m *Monitor) applyMeta(e *entry, o observation.Observation) bool {
	if o.ObservedAt.Before(e.lastMeta.Time()) {
		return false
	}
	e.lastMeta = instantOf(o.ObservedAt)
	st, s := e.st, e.st.Session
	changed := false
	if o.HasTitle && (o.Title != st.Title || o.Title != s.Title) {
		st.Title, s.Title = o.Title, o.Title
		changed = true
	}
	if o.HasCategory && (o.CategoryID != st.CategoryId || o.CategoryName != st.CategoryName || o.CategoryName != s.CategoryName) {
		st.CategoryId, st.CategoryName, s.CategoryName = o.CategoryID, o.CategoryName, o.CategoryName
		changed = true
	}
	if o.HasViewers && o.Viewers != st.ViewerCount {
		st.ViewerCount = o.Viewers
		changed = true
	}
	if o.Thumbnail != "" {
		st.ThumbnailUrl = o.Thumbnail // not a change: it rides on the next event
	}
	if st.ViewerCount > s.PeakViewers {
		s.PeakViewers = st.ViewerCount
		changed = true
	}
	return changed
}

func (m *Monitor) startSession(e *entry, o observation.Observation, start time.Time, prov bool, r *Result) {
	st := e.st
	if st.Session != nil { // ended (a caller ends an open one first)
		e.floor = later(e.floor, e.start)
		e.prev = st.Session
	}
	m.setUnconfirmed(e, o)
	st.Session = &kickmonv1.Session{
		SessionId:    m.cfg.NewSessionID(),
		DetectedBy:   o.Source,
		ObservedLate: e.fresh && start.Before(e.watchSince.Time()),
		Title:        st.Title,
		CategoryName: st.CategoryName,
	}
	st.State = kickmonv1.LiveState_LIVE_STATE_LIVE
	st.ViewerCount = 0
	st.ThumbnailUrl = "" // the last stream's image is not this one's
	m.setOpen(e, true)
	e.end, e.pend = time.Time{}, nil
	delete(m.pending, st.BroadcasterUserId)
	m.setStart(e, start, prov)
	e.lastLive = instantOf(o.ObservedAt)
	e.lastMeta = 0
	st.LastConfirmedAt = ts(o.ObservedAt)
	m.applyMeta(e, o)
	r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, o.Source, start, o.ObservedAt))
}

// setUnconfirmed records whether the session (re)opened by o still waits
// for the official API to list it (see Config.APILag).
func (m *Monitor) setUnconfirmed(e *entry, o observation.Observation) {
	e.unconfirmed = 0
	if o.Source != kickmonv1.Source_SOURCE_POLL {
		e.unconfirmed = instantOf(o.ObservedAt)
	}
}

// reopen continues the last session after it ended (a short drop).
func (m *Monitor) reopen(e *entry, o observation.Observation, start time.Time, prov bool, r *Result) {
	st := e.st
	st.State = kickmonv1.LiveState_LIVE_STATE_LIVE
	st.Session.EndedAt = nil
	m.setOpen(e, true)
	e.end = time.Time{}
	m.setUnconfirmed(e, o)
	corrected := e.provisional && !prov
	if corrected {
		m.setStart(e, start, false)
	} else {
		st.LiveSince = ts(e.start)
	}
	e.lastLive = instantOf(o.ObservedAt)
	st.LastConfirmedAt = ts(o.ObservedAt)
	m.applyMeta(e, o)
	r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, o.Source, o.KickTime, o.ObservedAt))
}

// endImplied ends the open session because a newer one started.
func (m *Monitor) endImplied(e *entry, o observation.Observation, newStart time.Time, r *Result) {
	end := ending{at: newStart, source: o.Source, observedAt: o.ObservedAt, confirmedAt: o.ObservedAt}
	if p := e.pend; p != nil {
		end.at, end.source, end.observedAt = cmp.Or(p.kickEnd, p.firstAt), p.source, p.firstAt
	}
	m.endSession(e, end, r)
}

func (m *Monitor) offline(e *entry, o observation.Observation, r *Result) {
	st := e.st
	if !e.open {
		if o.ObservedAt.Before(e.lastLive.Time()) {
			return
		}
		st.State = kickmonv1.LiveState_LIVE_STATE_OFFLINE
		e.lastOffline = instantOf(later(e.lastOffline.Time(), o.ObservedAt))
		setTS(&st.LastConfirmedAt, later(st.LastConfirmedAt.AsTime(), o.ObservedAt))
		return
	}
	if o.ObservedAt.Before(e.lastLive.Time()) {
		return // a newer live report supersedes it
	}
	if !o.StartedAt.IsZero() && m.relate(e.start, e.provisional, o.StartedAt, o.Provisional) != sameStart {
		return // about another session
	}
	if !o.EndedAt.IsZero() && o.EndedAt.Before(e.start.Add(-m.cfg.StartTolerance)) {
		return // ended before this session began
	}
	if o.Source == kickmonv1.Source_SOURCE_POLL && e.unconfirmed != 0 && o.ObservedAt.Before(e.unconfirmed.Time().Add(m.cfg.APILag)) {
		// The API may not list the stream yet: ask again once it should.
		e.recheck = instantOf(e.unconfirmed.Time().Add(m.cfg.APILag))
		m.rechecks[st.BroadcasterUserId] = e
		return
	}
	p := e.pend
	if p == nil {
		p = &pendingOffline{firstAt: o.ObservedAt, source: o.Source, deadline: o.ObservedAt.Add(m.cfg.OfflineGrace)}
	} else if o.ObservedAt.Before(p.firstAt) {
		p.firstAt, p.source = o.ObservedAt, o.Source
	}
	if p.kickEnd.IsZero() {
		p.kickEnd = o.EndedAt
	}
	if o.Source == kickmonv1.Source_SOURCE_POLL {
		m.endSession(e, ending{
			at:          cmp.Or(p.kickEnd, p.firstAt),
			source:      p.source,
			observedAt:  p.firstAt,
			confirmedAt: o.ObservedAt,
		}, r)
		return
	}
	e.pend = p
	m.pending[st.BroadcasterUserId] = e
	r.check(st.BroadcasterUserId)
}

// ending describes how a session ends.
type ending struct {
	at          time.Time        // ended_at (and the event's kick_time)
	source      kickmonv1.Source // the event's source
	observedAt  time.Time        // the event's observed_at
	confirmedAt time.Time        // the streamer's last_confirmed_at (offline)
}

func (m *Monitor) endSession(e *entry, end ending, r *Result) {
	m.touch(e)
	st := e.st
	if end.at.Before(e.start) {
		end.at = e.start
	}
	st.Session.EndedAt = ts(end.at)
	st.State = kickmonv1.LiveState_LIVE_STATE_OFFLINE
	st.LiveSince = nil
	st.ViewerCount = 0
	st.LastConfirmedAt = ts(end.confirmedAt)
	m.setOpen(e, false)
	e.end = end.at
	e.lastOffline = instantOf(end.confirmedAt)
	e.pend = nil
	delete(m.pending, st.BroadcasterUserId)
	e.unconfirmed, e.recheck = 0, 0
	delete(m.rechecks, st.BroadcasterUserId)
	r.Events = append(r.Events, e.event(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, end.source, end.at, end.observedAt))
}

func (m *Monitor) observeCoverage(o observation.Observation, r *Result) {
	if o.Source <= 0 || int(o.Source) >= numSources {
		return
	}
	if isRealtime(o.Source) && !(o.Blind && strings.HasPrefix(o.Reason, ReasonNoChannelID)) {
		m.realtime = o.Source
	}
	ids := o.UserIDs
	if len(ids) == 0 {
		ids = make([]int64, 0, len(m.streamers))
		for id := range m.streamers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	for _, id := range ids {
		e, ok := m.streamers[id]
		if !ok {
			continue
		}
		src := o.Source
		if isRealtime(src) {
			noChannel := o.Blind && strings.HasPrefix(o.Reason, ReasonNoChannelID)
			if (e.st.ChannelId == 0) != noChannel {
				continue // "no channel id" is only for, and the only report for, streamers without one
			}
			if noChannel {
				src = m.rtSource() // a refined reason from any source names the provider in use
			}
		}
		m.setCoverage(e, src, o.Blind, o.Reason, o.Source, o.KickTime, o.ObservedAt, r)
	}
}

// setCoverage sets one source's coverage entry, with a COVERAGE_CHANGED
// when it actually changes. A new entry that sees is not a change.
func (m *Monitor) setCoverage(e *entry, source kickmonv1.Source, blind bool, reason string, evSource kickmonv1.Source, kickTime, at time.Time, r *Result) {
	if !blind {
		reason = ""
	}
	c := coverageOf(e.st, source)
	moved := false
	if c == nil && isRealtime(source) {
		if c = realtimeCoverage(e.st); c != nil {
			moved = true // the other provider's entry: take it over
			m.touch(e)
			e.st.Coverage = slices.DeleteFunc(e.st.Coverage, func(x *kickmonv1.Coverage) bool { return x == c })
			c.Source = source
			e.st.Coverage = insertCoverage(e.st.Coverage, c)
		}
	}
	switch {
	case c == nil:
		m.touch(e)
		c = &kickmonv1.Coverage{Source: source}
		e.st.Coverage = insertCoverage(e.st.Coverage, c)
		if !blind {
			c.Since = ts(at)
			return
		}
	case at.Before(c.Since.AsTime()):
		return // older than the current state
	case c.Blind == blind && c.Reason == reason && !moved:
		return
	}
	m.touch(e)
	c.Blind, c.Reason, c.Since = blind, reason, ts(at)
	ev := e.event(kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, evSource, kickTime, at)
	ev.Coverage = proto.Clone(c).(*kickmonv1.Coverage)
	r.Events = append(r.Events, ev)
}

// touchCoverage records that a source reported on the streamer.
func (m *Monitor) touchCoverage(e *entry, source kickmonv1.Source, at time.Time) {
	c := coverageOf(e.st, source)
	if c == nil && isRealtime(source) {
		if c = realtimeCoverage(e.st); c != nil { // the provider changed: the entry follows
			e.st.Coverage = slices.DeleteFunc(e.st.Coverage, func(x *kickmonv1.Coverage) bool { return x == c })
			c.Source = source
			e.st.Coverage = insertCoverage(e.st.Coverage, c)
		}
	}
	if c == nil {
		c = &kickmonv1.Coverage{Source: source, Since: ts(at)}
		e.st.Coverage = insertCoverage(e.st.Coverage, c)
	}
	if c.LastConfirmedAt == nil || at.After(c.LastConfirmedAt.AsTime()) {
		setTS(&c.LastConfirmedAt, at)
	}
}

// isRealtime reports whether source is a provider of Kick's realtime feed.
func isRealtime(source kickmonv1.Source) bool {
	return source == kickmonv1.Source_SOURCE_PUSHER || source == kickmonv1.Source_SOURCE_CENTRIFUGO
}

// rtSource is the realtime provider that reported last (Pusher before any).
func (m *Monitor) rtSource() kickmonv1.Source {
	return cmp.Or(m.realtime, kickmonv1.Source_SOURCE_PUSHER)
}

// realtimeCoverage returns the streamer's realtime entry, of either provider.
func realtimeCoverage(st *kickmonv1.Streamer) *kickmonv1.Coverage {
	for _, c := range st.Coverage {
		if isRealtime(c.Source) {
			return c
		}
	}
	return nil
}

func coverageOf(st *kickmonv1.Streamer, source kickmonv1.Source) *kickmonv1.Coverage {
	for _, c := range st.Coverage {
		if c.Source == source {
			return c
		}
	}
	return nil
}

// insertCoverage adds c keeping the entries sorted by source.
func insertCoverage(cs []*kickmonv1.Coverage, c *kickmonv1.Coverage) []*kickmonv1.Coverage {
	i, _ := slices.BinarySearchFunc(cs, c.Source, func(x *kickmonv1.Coverage, s kickmonv1.Source) int {
		return cmp.Compare(x.Source, s)
	})
	return slices.Insert(cs, i, c)
}
