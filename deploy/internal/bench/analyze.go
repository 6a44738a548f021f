package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// transition is an entry of kicksim's ground truth (GET /control/truth).
type transition struct {
	Seq             int64     `json:"seq"`
	Kind            string    `json:"kind"`
	UserID          int64     `json:"user_id"`
	At              time.Time `json:"at"`
	StartedAt       time.Time `json:"started_at"`
	PusherCreatedAt time.Time `json:"pusher_created_at"`
	Initial         bool      `json:"initial"`
}

// storedEvent is a row of kickmon.status_events with its commit time.
type storedEvent struct {
	UserID     int64
	Kind       string // STREAM_STARTED, …
	ObservedAt time.Time
	Committed  time.Time
}

// storedSession is a row of kickmon.stream_sessions with the observed_at of
// its STREAM_STARTED event (when kickmon saw it start).
type storedSession struct {
	UserID    int64
	StartedAt time.Time
	Seen      time.Time
}

// sessionSlack is how far a stored start may be from Kick's: push reports
// created_at, 1–3 s after the official start, and the poller corrects it.
const sessionSlack = 2 * time.Second

// compatible tells whether a stored event kind can be the record of a
// ground-truth transition kind.
func compatible(eventKind, truthKind string) bool {
	switch eventKind {
	case "STREAM_STARTED":
		return truthKind == "live"
	case "STREAM_UPDATED":
		return truthKind == "title" || truthKind == "category" || truthKind == "viewers"
	}
	return false
}

// changeToCommit matches each stored event to the latest compatible change
// of its streamer made at or before kickmon observed it, and returns the
// times from that change to the event's commit, and how many events matched
// no change (an event about a change before the truth fetched).
func changeToCommit(truth []transition, events []storedEvent) (lat []time.Duration, unmatched int) {
	byUser := map[int64][]transition{}
	for _, t := range truth {
		byUser[t.UserID] = append(byUser[t.UserID], t) // in seq order, so in At order
	}
	for _, e := range events {
		ts := byUser[e.UserID]
		i, _ := slices.BinarySearchFunc(ts, e.ObservedAt, func(t transition, at time.Time) int {
			if t.At.After(at) {
				return 1
			}
			return -1
		})
		found := false
		for j := i - 1; j >= 0; j-- {
			if compatible(e.Kind, ts[j].Kind) {
				lat = append(lat, e.Committed.Sub(ts[j].At))
				found = true
				break
			}
		}
		if !found {
			unmatched++
		}
	}
	return lat, unmatched
}

// sessionReport is how the sessions Kick had in a window ended up in the
// database.
type sessionReport struct {
	Started int // sessions that started in the window on watched streamers
	Missed  int // ended before the window closed and never stored
	Pending int // not stored yet, still live at the window's end (a poll will see them)
	// NoChannel: detection times of first sessions, which kickmon sees
	// without a channel id (no official source gives one before a
	// streamer has been seen live); NoChannelMissed of those were missed.
	NoChannel       []time.Duration
	NoChannelMissed int
}

// sessions checks every session that started in [from, to) on a streamer
// watched since before its start (watched: when it was added) against the
// stored sessions.
func sessions(truth []transition, stored []storedSession, watched map[int64]time.Time, from, to time.Time) sessionReport {
	byUser := map[int64][]storedSession{}
	for _, s := range stored {
		byUser[s.UserID] = append(byUser[s.UserID], s)
	}
	var r sessionReport
	seenLive := map[int64]bool{}
	open := map[int64]int{} // user → index in truth of the open session's start
	ended := map[int]time.Time{}
	for i, t := range truth {
		switch t.Kind {
		case "live":
			open[t.UserID] = i
		case "offline", "ban":
			if j, ok := open[t.UserID]; ok {
				ended[j] = t.At
				delete(open, t.UserID)
			}
		}
	}
	for i, t := range truth {
		if t.Kind != "live" {
			continue
		}
		first := !seenLive[t.UserID]
		seenLive[t.UserID] = true
		added, ok := watched[t.UserID]
		if t.Initial || !ok || t.At.Before(added) || t.At.Before(from) || !t.At.Before(to) {
			continue
		}
		r.Started++
		var seen time.Time
		for _, s := range byUser[t.UserID] {
			if !s.StartedAt.Before(t.StartedAt.Add(-sessionSlack)) && !s.StartedAt.After(t.PusherCreatedAt.Add(sessionSlack)) {
				seen = s.Seen
				break
			}
		}
		end, hasEnd := ended[i]
		missed := seen.IsZero() && hasEnd && end.Before(to)
		switch {
		case missed:
			r.Missed++
		case seen.IsZero():
			r.Pending++
		}
		if first {
			if missed {
				r.NoChannelMissed++
			} else if !seen.IsZero() {
				r.NoChannel = append(r.NoChannel, seen.Sub(t.At))
			}
		}
	}
	return r
}

// pollRound says what a poll interval's REST requests were, from kicksim's
// count (total, over a quiet window of took) and the collector's counters
// by reason before and after: the base round, the streamers the round
// refreshed / 50, beside the extra requests spent on purpose, and how
// often each streamer without a channel id was refreshed.
func pollRound(n int, total int64, took time.Duration, before, after map[string]float64) string {
	scale := pollInterval.Seconds() / took.Seconds()
	delta := func(name, reason string) float64 {
		k := fmt.Sprintf(`kickmon_collector_poll_%s_total{reason="%s"}`, name, reason)
		return after[k] - before[k]
	}
	per := func(v float64) int64 { return int64(math.Round(v * scale)) }
	round := delta("refreshes", "round")
	base := int64(math.Round(round * scale / 50)) // scaled: ceil would count noise as a batch
	extra := fmt.Sprintf("extra on purpose: %d uncovered, %d checks, %d livestreams",
		per(delta("requests", "uncovered")), per(delta("requests", "check")), per(delta("requests", "livestreams")))
	if u := uncoveredPeriod(n, took, before, after); u != "" {
		extra += " (" + u + ")"
	}
	return fmt.Sprintf("base round %d (%d streamers refreshed, %d requests of its own); %s; kicksim answered %d (%d in %s, scaled to %s)",
		base, per(round), per(delta("requests", "round")), extra, per(float64(total)), total, took.Round(time.Second), pollInterval)
}

// uncoveredPeriod says how often, over a window of took, each streamer
// without a channel id was refreshed, from the collector's counters before
// and after ("" when none is uncovered).
func uncoveredPeriod(n int, took time.Duration, before, after map[string]float64) string {
	u := after["kickmon_collector_poll_uncovered_streamers"]
	if u <= 0 || n <= 0 {
		return ""
	}
	delta := func(reason string) float64 {
		k := `kickmon_collector_poll_refreshes_total{reason="` + reason + `"}`
		return after[k] - before[k]
	}
	// Each is refreshed by the extra requests, and by the round (and
	// checks) as any other streamer.
	refreshed := delta("uncovered") + (delta("round")+delta("check"))*u/float64(n)
	period := "never"
	if refreshed > 0 {
		period = "every " + time.Duration(u/refreshed*float64(took)).Round(100*time.Millisecond).String()
	}
	return fmt.Sprintf("%.0f streamers without a channel id, each refreshed %s; target %s", u, period,
		time.Duration(after["kickmon_collector_poll_uncovered_period_seconds"]*float64(time.Second)).Round(100*time.Millisecond))
}
