package bench

import (
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
