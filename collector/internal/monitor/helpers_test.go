package monitor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"

	"github.com/kickmon/kickmon/collector/internal/observation"
)

// t0 is the tests' time origin; test times are seconds relative to it.
var t0 = time.Date(2026, 8, 2, 9, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// rel renders a time relative to t0 ("" when unset), as the projections do.
func rel(sec int) string { return (time.Duration(sec) * time.Second).String() }

// seqIDs returns a deterministic NewSessionID: s1, s2, …
func seqIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("s%d", n) }
}

func newTestMonitor() *Monitor {
	return New(Config{NewSessionID: seqIDs()})
}

// step is one call on the monitor; check, when non-nil, is the Check the
// call must return.
type step struct {
	do    func(*Monitor) Result
	check []int64
}

func add(uid int64, slug string, channel int64, sec int) step {
	return step{do: func(m *Monitor) Result {
		return m.Add(Identity{UserID: uid, Slug: slug, ChannelID: channel}, at(sec))
	}}
}

func remove(uid int64, sec int) step {
	return step{do: func(m *Monitor) Result { return m.Remove(uid, at(sec)) }}
}

func tick(sec int) step {
	return step{do: func(m *Monitor) Result { return m.Tick(at(sec)) }}
}

func obs(o observation.Observation) step {
	return step{do: func(m *Monitor) Result { return m.Observe(o) }}
}

// checks sets the Check the step must return.
func (s step) checks(ids ...int64) step {
	s.check = append([]int64{}, ids...)
	return s
}

type opt func(*observation.Observation)

func user(id int64) opt    { return func(o *observation.Observation) { o.UserID = id } }
func slug(s string) opt    { return func(o *observation.Observation) { o.Slug = s } }
func channel(id int64) opt { return func(o *observation.Observation) { o.ChannelID = id } }
func title(s string) opt   { return func(o *observation.Observation) { o.HasTitle, o.Title = true, s } }
func thumb(s string) opt   { return func(o *observation.Observation) { o.Thumbnail = s } }
func viewers(n int64) opt {
	return func(o *observation.Observation) { o.HasViewers, o.Viewers = true, n }
}
func kick(sec int) opt { return func(o *observation.Observation) { o.KickTime = at(sec) } }
func category(id int64, name string) opt {
	return func(o *observation.Observation) { o.HasCategory, o.CategoryID, o.CategoryName = true, id, name }
}

func status(src kickmonv1.Source, sec int, live observation.Liveness, opts ...opt) observation.Observation {
	o := observation.Observation{Kind: observation.Status, Source: src, UserID: 1, Live: live, ObservedAt: at(sec)}
	for _, f := range opts {
		f(&o)
	}
	return o
}

const (
	poll    = kickmonv1.Source_SOURCE_POLL
	pusher  = kickmonv1.Source_SOURCE_PUSHER
	webhook = kickmonv1.Source_SOURCE_WEBHOOK
)

// live is a live report observed at sec with the stream started at start;
// push's start is provisional.
func live(src kickmonv1.Source, sec, start int, opts ...opt) step {
	o := status(src, sec, observation.Live, opts...)
	o.StartedAt = at(start)
	o.Provisional = src == pusher
	return obs(o)
}

func offline(src kickmonv1.Source, sec int, opts ...opt) step {
	return obs(status(src, sec, observation.Offline, opts...))
}

// hookOffline is a webhook "stream ended" with Kick's start and end times.
func hookOffline(sec, start, ended int, opts ...opt) step {
	o := status(webhook, sec, observation.Offline, opts...)
	o.StartedAt, o.EndedAt = at(start), at(ended)
	return obs(o)
}

func metadata(src kickmonv1.Source, sec int, opts ...opt) step {
	return obs(status(src, sec, observation.LiveUnknown, opts...))
}

func coverage(src kickmonv1.Source, sec int, blind bool, reason string, ids ...int64) step {
	return obs(observation.Observation{Kind: observation.Coverage, Source: src, UserIDs: ids, Blind: blind, Reason: reason, ObservedAt: at(sec)})
}

// ev is the projection of an event the table tests compare.
type ev struct {
	Kind  string // EventKind without the prefix
	User  int64
	Src   string // Source without the prefix
	Kick  string // times relative to t0, "" when unset
	Obs   string
	State string // LiveState without the prefix

	// From the event's session (STREAM_* events).
	Sess  string
	Start string
	Prov  bool
	End   string
	Late  bool
	Peak  int64

	Title   string // the streamer's
	Thumb   string // the streamer's thumbnail_url
	Viewers int64
	Prev    string // previous_slug
	Cov     string // "PUSHER blind:reason" or "PUSHER seeing"
}

func relTime(t interface{ AsTime() time.Time }, set bool) string {
	if !set {
		return ""
	}
	return t.AsTime().Sub(t0).String()
}

func project(e *kickmonv1.Event) ev {
	p := ev{
		Kind:    strings.TrimPrefix(e.Kind.String(), "EVENT_KIND_"),
		User:    e.Streamer.GetBroadcasterUserId(),
		Src:     strings.TrimPrefix(e.Source.String(), "SOURCE_"),
		Kick:    relTime(e.KickTime, e.KickTime != nil),
		Obs:     relTime(e.ObservedAt, e.ObservedAt != nil),
		State:   strings.TrimPrefix(e.Streamer.GetState().String(), "LIVE_STATE_"),
		Title:   e.Streamer.GetTitle(),
		Thumb:   e.Streamer.GetThumbnailUrl(),
		Viewers: e.Streamer.GetViewerCount(),
		Prev:    e.PreviousSlug,
	}
	if s := e.Session; s != nil {
		p.Sess, p.Prov, p.Late, p.Peak = s.SessionId, s.StartedAtProvisional, s.ObservedLate, s.PeakViewers
		p.Start = relTime(s.StartedAt, s.StartedAt != nil)
		p.End = relTime(s.EndedAt, s.EndedAt != nil)
	}
	if c := e.Coverage; c != nil {
		p.Cov = strings.TrimPrefix(c.Source.String(), "SOURCE_") + " seeing"
		if c.Blind {
			p.Cov = strings.TrimPrefix(c.Source.String(), "SOURCE_") + " blind:" + c.Reason
		}
	}
	return p
}

// run applies the steps and returns the projected events of all of them,
// failing on a Check that differs from a step's expected one.
func run(t *testing.T, m *Monitor, steps []step) []ev {
	t.Helper()
	var got []ev
	for i, s := range steps {
		r := s.do(m)
		for _, e := range r.Events {
			if e.Seq != 0 {
				t.Errorf("step %d: event with seq %d, want 0", i, e.Seq)
			}
			got = append(got, project(e))
		}
		if s.check != nil {
			if diff := cmp.Diff(s.check, r.Check, cmpEmpty); diff != "" {
				t.Errorf("step %d: Check (-want +got):\n%s", i, diff)
			}
		}
	}
	return got
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b []int64) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func started(src string, kick, obs, start int, sess string) ev {
	return ev{Kind: "STREAM_STARTED", User: 1, Src: src, Kick: rel(kick), Obs: rel(obs), State: "LIVE", Sess: sess, Start: rel(start)}
}

func ended(src string, kick, obs, start, end int, sess string) ev {
	return ev{Kind: "STREAM_ENDED", User: 1, Src: src, Kick: rel(kick), Obs: rel(obs), State: "OFFLINE", Sess: sess, Start: rel(start), End: rel(end)}
}

// addedEv is the STREAMER_ADDED of user 1 ("alpha", no channel id) at sec.
func addedEv(sec int) ev {
	return ev{Kind: "STREAMER_ADDED", User: 1, Src: "OPERATOR", Obs: rel(sec), State: "UNKNOWN"}
}
