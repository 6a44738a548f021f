package monitor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"

	"github.com/kickmon/kickmon/collector/internal/observation"
)

// FuzzMonitor feeds random call sequences (see replay) and checks the
// invariants of checkSequence. Run it longer with
// go test -fuzz FuzzMonitor ./collector/internal/monitor/
func FuzzMonitor(f *testing.F) {
	f.Add([]byte{0, 1, 10, 0, 2, 1, 10, 1, 5, 1, 30, 0, 11, 1, 40, 0})
	f.Add([]byte{0, 2, 0, 0, 3, 2, 5, 2, 4, 2, 250, 3, 1, 2, 20, 1, 9, 2, 100, 0})
	f.Fuzz(func(t *testing.T, program []byte) {
		if err := checkSequence(program); err != nil {
			t.Fatal(err)
		}
	})
}

// TestProperties runs checkSequence over many random programs, so the
// invariants are checked in every test run, not only when fuzzing.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		program := make([]byte, 4*(1+rng.IntN(60)))
		for j := range program {
			program[j] = byte(rng.UintN(256))
		}
		if err := checkSequence(program); err != nil {
			t.Fatalf("program %d %v: %v", i, program, err)
		}
	}
}

// checkSequence replays program and checks: at most one open session per
// streamer; STREAM_ENDED only for the open session, which a STREAM_STARTED
// began; never two sessions of a streamer with the same started_at (the
// writer's unique key); every event carries the full streamer state, no seq, and what its
// kind needs; the monitor's own state stays consistent.
func checkSequence(program []byte) error {
	m := New(Config{NewSessionID: seqIDs()})
	open := map[int64]string{}                 // user → open session id
	ended := map[string]int64{}                // ended session id → user
	seen := map[string]bool{}                  // every session id started
	starts := map[int64]map[string]time.Time{} // user → session id → started_at
	before, mark := map[int64]*kickmonv1.Streamer{}, m.Changes()
	return replay(m, program, func(step string, r Result) error {
		if err := checkChanges(m, before, mark); err != nil {
			return fmt.Errorf("%s: %v", step, err)
		}
		mark = m.Changes()
		for _, e := range r.Events {
			if err := checkEvent(e); err != nil {
				return fmt.Errorf("%s: %v: %v", step, err, e)
			}
			user, s := e.Streamer.BroadcasterUserId, e.Session
			if s != nil {
				if starts[user] == nil {
					starts[user] = map[string]time.Time{}
				}
				start := s.StartedAt.AsTime()
				starts[user][s.SessionId] = start
				for id, other := range starts[user] {
					if id != s.SessionId && other.Equal(start) {
						return fmt.Errorf("%s: sessions %s and %s of user %d both start at %v", step, id, s.SessionId, user, start)
					}
				}
			}
			switch e.Kind {
			case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
				if id, ok := open[user]; ok {
					return fmt.Errorf("%s: STREAM_STARTED %s while %s is open", step, s.SessionId, id)
				}
				if seen[s.SessionId] {
					return fmt.Errorf("%s: STREAM_STARTED for %s twice", step, s.SessionId)
				}
				seen[s.SessionId] = true
				open[user] = s.SessionId
			case kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
				if open[user] != s.SessionId {
					return fmt.Errorf("%s: STREAM_ENDED for %s, open session is %q", step, s.SessionId, open[user])
				}
				delete(open, user)
				ended[s.SessionId] = user
			case kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
				if s.EndedAt != nil {
					return fmt.Errorf("%s: STREAM_UPDATED of an ended session", step)
				}
				if open[user] == s.SessionId {
					break
				}
				if _, ok := open[user]; ok || ended[s.SessionId] != user {
					return fmt.Errorf("%s: STREAM_UPDATED for %s, open session is %q", step, s.SessionId, open[user])
				}
				open[user] = s.SessionId // a continued session
				delete(ended, s.SessionId)
			case kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED:
				if id, ok := open[user]; ok {
					return fmt.Errorf("%s: removed with %s open", step, id)
				}
			}
		}
		live := 0
		for _, st := range m.Streamers() {
			if st.State == kickmonv1.LiveState_LIVE_STATE_LIVE {
				live++
			}
			if err := checkStreamer(st); err != nil {
				return fmt.Errorf("%s: monitor state: %v", step, err)
			}
			if id := open[st.BroadcasterUserId]; (id != "") != (st.State == kickmonv1.LiveState_LIVE_STATE_LIVE) {
				return fmt.Errorf("%s: streamer %d is %v, events say open session %q", step, st.BroadcasterUserId, st.State, id)
			}
		}
		if m.Live() != live {
			return fmt.Errorf("%s: Live() = %d, %d streamers are live", step, m.Live(), live)
		}
		return nil
	})
}

// checkChanges checks that List(mark, …) gives every watched streamer
// whose state differs from before (the states as of mark), full and
// confirmations only, then makes before the current states.
func checkChanges(m *Monitor, before map[int64]*kickmonv1.Streamer, mark uint64) error {
	listed := map[int64]bool{}
	for _, st := range m.List(mark, false) {
		listed[st.BroadcasterUserId] = true
	}
	slim := map[int64]*kickmonv1.Streamer{}
	for _, st := range m.List(mark, true) {
		slim[st.BroadcasterUserId] = st
	}
	now := m.Streamers()
	for _, st := range now {
		uid := st.BroadcasterUserId
		if prev := before[uid]; !listed[uid] && (prev == nil || !proto.Equal(prev, st)) {
			return fmt.Errorf("user %d changed, not listed as changed:\n%v\nwas\n%v", uid, st, prev)
		}
		if want := confirmationsOf(st); slim[uid] != nil && !proto.Equal(want, slim[uid]) {
			return fmt.Errorf("confirmations of %d: %v, want %v", uid, slim[uid], want)
		}
		if listed[uid] != (slim[uid] != nil) {
			return fmt.Errorf("user %d is in one of the lists of changes only", uid)
		}
	}
	clear(before)
	for _, st := range now {
		before[st.BroadcasterUserId] = st
	}
	for uid := range listed {
		if before[uid] == nil {
			return fmt.Errorf("user %d listed as changed, not watched", uid)
		}
	}
	return nil
}

func checkEvent(e *kickmonv1.Event) error {
	switch {
	case e.Seq != 0:
		return fmt.Errorf("seq %d set", e.Seq)
	case e.Kind == kickmonv1.EventKind_EVENT_KIND_UNSPECIFIED:
		return fmt.Errorf("no kind")
	case e.Source == kickmonv1.Source_SOURCE_UNSPECIFIED:
		return fmt.Errorf("no source")
	case e.ObservedAt == nil:
		return fmt.Errorf("no observed_at")
	case e.Streamer == nil:
		return fmt.Errorf("no streamer state")
	}
	if err := checkStreamer(e.Streamer); err != nil {
		return err
	}
	switch e.Kind {
	case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
		if e.Session == nil || e.Session.SessionId != e.Streamer.Session.GetSessionId() {
			return fmt.Errorf("session %v is not the streamer's", e.Session)
		}
		if e.Kind != kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED && e.KickTime == nil {
			return fmt.Errorf("no kick_time")
		}
	case kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED:
		if e.Coverage == nil {
			return fmt.Errorf("no coverage")
		}
	case kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED:
		if e.PreviousSlug == "" || e.PreviousSlug == e.Streamer.Slug {
			return fmt.Errorf("previous_slug %q", e.PreviousSlug)
		}
	}
	return nil
}

// checkStreamer checks one state is complete and consistent.
func checkStreamer(st *kickmonv1.Streamer) error {
	live := st.State == kickmonv1.LiveState_LIVE_STATE_LIVE
	switch {
	case st.BroadcasterUserId == 0 || st.Slug == "" || st.AddedAt == nil:
		return fmt.Errorf("incomplete streamer %v", st)
	case st.State == kickmonv1.LiveState_LIVE_STATE_UNSPECIFIED:
		return fmt.Errorf("state unspecified")
	case live != (st.Session != nil && st.Session.EndedAt == nil):
		return fmt.Errorf("state %v with session %v", st.State, st.Session)
	case live != (st.LiveSince != nil):
		return fmt.Errorf("state %v with live_since %v", st.State, st.LiveSince)
	case st.Session != nil && st.Session.EndedAt != nil && st.Session.EndedAt.AsTime().Before(st.Session.StartedAt.AsTime()):
		return fmt.Errorf("session ends before it starts: %v", st.Session)
	case !live && st.ViewerCount != 0:
		return fmt.Errorf("viewers %d while %v", st.ViewerCount, st.State)
	}
	return nil
}

// replay decodes program, 4 bytes a call: what, which of 3 streamers, how
// far the clock moves (often a few seconds, up to 140 s, sometimes
// backwards: out-of-order observations), and
// which of a few start times (moving forward now and then) a report names;
// the webhook sometimes repeats an official start time reported before.
func replay(m *Monitor, program []byte, after func(step string, r Result) error) error {
	now := t0
	base := t0.Add(-time.Hour)
	official := map[int64][]time.Time{} // official start times reported so far
	for i := 0; i+4 <= len(program); i += 4 {
		op, uid, dt, sel := program[i]%13, int64(program[i+1]%3)+1, int(program[i+2]), int(program[i+3])
		switch {
		case dt > 230:
			now = now.Add(-time.Duration(dt-200) * time.Second)
		case dt < 96: // seconds apart: restarts, API lag
			now = now.Add(time.Duration(dt%6) * time.Second)
		default:
			now = now.Add(time.Duration(dt-90) * time.Second)
		}
		if sel%7 == 6 {
			base = now.Add(-time.Duration(sel%5) * time.Second)
		}
		start := base.Add(time.Duration(sel%4-1) * 40 * time.Second)
		o := observation.Observation{Kind: observation.Status, UserID: uid, ObservedAt: now, StartedAt: start}
		var r Result
		switch op {
		case 0:
			r = m.Add(Identity{UserID: uid, Slug: fmt.Sprintf("s%d", sel%4), ChannelID: int64(sel % 2)}, now)
		case 1:
			r = m.Remove(uid, now)
		case 2, 3:
			o.Source, o.Live = kickmonv1.Source_SOURCE_POLL, observation.Live
			o.HasViewers, o.Viewers = true, int64(sel)
			o.Slug = fmt.Sprintf("s%d", sel%5)
		case 4:
			o.Source, o.Live = kickmonv1.Source_SOURCE_POLL, observation.Offline
		case 5:
			o.Source, o.Live, o.Provisional = kickmonv1.Source_SOURCE_PUSHER, observation.Live, true
			o.StartedAt = start.Add(time.Duration(sel%3) * time.Second)
			if sel%2 == 0 { // created_at of a stream going live just now
				o.StartedAt = now.Add(-time.Duration(sel%3) * time.Second)
			}
		case 6:
			o.Source, o.Live = kickmonv1.Source_SOURCE_PUSHER, observation.Offline
		case 7:
			o.Source, o.Live = kickmonv1.Source_SOURCE_WEBHOOK, observation.Live
			if n := len(official[uid]); n > 0 && sel%2 == 0 { // a start Kick gave before
				o.StartedAt = official[uid][max(0, n-1-sel%3)]
			}
		case 8:
			o.Source, o.Live, o.EndedAt = kickmonv1.Source_SOURCE_WEBHOOK, observation.Offline, now.Add(-time.Duration(sel)*time.Second)
		case 9:
			r = m.Tick(now)
		case 10:
			o.Source, o.Live, o.HasTitle, o.Title = kickmonv1.Source_SOURCE_PUSHER, observation.LiveUnknown, true, fmt.Sprint(sel)
			o.StartedAt = time.Time{}
		case 11:
			o = observation.Observation{Kind: observation.Coverage, Source: kickmonv1.Source(sel%3 + 1), Blind: sel%2 == 0, Reason: "down", ObservedAt: now}
			if sel%3 == 0 {
				o.UserIDs = []int64{uid}
			}
		case 12:
			o.Source, o.Live, o.StartedAt = kickmonv1.Source_SOURCE_POLL, observation.Live, time.Time{}
		}
		if op != 0 && op != 1 && op != 9 {
			r = m.Observe(o)
		}
		if o.Kind == observation.Status && o.Live == observation.Live && !o.Provisional && !o.StartedAt.IsZero() {
			official[uid] = append(official[uid], o.StartedAt)
		}
		if err := after(fmt.Sprintf("call %d (op %d user %d)", i/4, op, uid), r); err != nil {
			return err
		}
	}
	return nil
}

// confirmationsOf is what List(…, true) must give of st.
func confirmationsOf(st *kickmonv1.Streamer) *kickmonv1.Streamer {
	out := &kickmonv1.Streamer{BroadcasterUserId: st.BroadcasterUserId, LastConfirmedAt: st.LastConfirmedAt}
	for _, c := range st.Coverage {
		out.Coverage = append(out.Coverage, &kickmonv1.Coverage{Source: c.Source, LastConfirmedAt: c.LastConfirmedAt})
	}
	return out
}
