package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestChangeToCommit(t *testing.T) {
	truth := []transition{
		{Seq: 1, Kind: "live", UserID: 1, At: at(0)},
		{Seq: 2, Kind: "viewers", UserID: 1, At: at(1000)},
		{Seq: 3, Kind: "title", UserID: 1, At: at(2000)},
		{Seq: 4, Kind: "live", UserID: 2, At: at(2500)},
		{Seq: 5, Kind: "offline", UserID: 1, At: at(3000)},
	}
	tests := []struct {
		name      string
		events    []storedEvent
		lat       []time.Duration
		unmatched int
	}{
		{"a start matches the latest live before it was seen",
			[]storedEvent{{UserID: 1, Kind: "STREAM_STARTED", ObservedAt: at(50), Committed: at(120)}}, []time.Duration{120 * time.Millisecond}, 0},
		{"an update matches the latest metadata change, not the start",
			[]storedEvent{{UserID: 1, Kind: "STREAM_UPDATED", ObservedAt: at(2010), Committed: at(2100)}}, []time.Duration{100 * time.Millisecond}, 0},
		{"an update seen after the offline still matches the title",
			[]storedEvent{{UserID: 1, Kind: "STREAM_UPDATED", ObservedAt: at(3500), Committed: at(3600)}}, []time.Duration{1600 * time.Millisecond}, 0},
		{"another streamer's changes never match",
			[]storedEvent{{UserID: 2, Kind: "STREAM_UPDATED", ObservedAt: at(3000), Committed: at(3100)}}, nil, 1},
		{"nothing before it: unmatched",
			[]storedEvent{{UserID: 2, Kind: "STREAM_STARTED", ObservedAt: at(2000), Committed: at(2100)}}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lat, unmatched := changeToCommit(truth, tt.events)
			if d := cmp.Diff(tt.lat, lat); d != "" || unmatched != tt.unmatched {
				t.Errorf("latencies (-want +got):\n%s unmatched %d, want %d", d, unmatched, tt.unmatched)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	live := func(seq, user int64, s int, initial bool) transition {
		return transition{Seq: seq, Kind: "live", UserID: user, At: sec(s), StartedAt: sec(s - 2), PusherCreatedAt: sec(s), Initial: initial}
	}
	off := func(seq, user int64, s int) transition {
		return transition{Seq: seq, Kind: "offline", UserID: user, At: sec(s)}
	}
	truth := []transition{
		live(1, 1, 0, true),                  // live before kickmon: not counted
		live(2, 2, 10, false), off(3, 2, 20), // short, never stored: missed (a first session)
		live(4, 3, 12, false),                // still live, not stored yet: pending
		live(5, 4, 15, false),                // stored (push: created_at), seen 3 s later
		off(6, 1, 30), live(7, 1, 40, false), // stored as the official start, second session: not "no channel"
		live(8, 5, 5, false),   // before user 5 was watched: not counted
		live(9, 6, 200, false), // after the window
	}
	stored := []storedSession{
		{UserID: 4, StartedAt: sec(15), Seen: sec(18)},
		{UserID: 1, StartedAt: sec(38), Seen: sec(45)},
		{UserID: 1, StartedAt: sec(-100), Seen: sec(0)},
	}
	watched := map[int64]time.Time{1: sec(0), 2: sec(0), 3: sec(0), 4: sec(0), 5: sec(8), 6: sec(0)}
	got := sessions(truth, stored, watched, sec(0), sec(100))
	want := sessionReport{Started: 4, Missed: 1, Pending: 1, NoChannel: []time.Duration{3 * time.Second}, NoChannelMissed: 1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%v = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %s", got)
	}
}

// The process figures come from this process's own /proc files.
func TestProcFigures(t *testing.T) {
	pid := os.Getpid()
	cpu, err := cpuTime(pid)
	if err != nil || cpu < 0 {
		t.Fatalf("cpuTime = %s, %v", cpu, err)
	}
	rss, peak, err := memory(pid)
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("memory = %d, %d, %v", rss, peak, err)
	}
}

func TestPollRound(t *testing.T) {
	m := func(kv ...any) map[string]float64 {
		out := map[string]float64{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = float64(kv[i+1].(int))
		}
		return out
	}
	const req, ref = `kickmon_collector_poll_requests_total{reason="%s"}`, `kickmon_collector_poll_refreshes_total{reason="%s"}`
	r := func(f, reason string) string { return fmt.Sprintf(f, reason) }
	before := m(r(req, "round"), 100, r(ref, "round"), 5000, r(req, "uncovered"), 10)
	tests := []struct {
		name  string
		after map[string]float64
		total int64
		want  string
	}{
		{"a quiet round, nothing uncovered",
			m(r(req, "round"), 167, r(ref, "round"), 8334, r(req, "uncovered"), 10), 67,
			"base round 200 (10002 streamers refreshed, 201 requests of its own); extra on purpose: 0 uncovered, 0 checks, 0 livestreams; kicksim answered 201 (67 in 20s, scaled to 1m0s)"},
		{"checks carry routine ids; uncovered streamers every 20 s",
			m(r(req, "round"), 160, r(ref, "round"), 8334, r(req, "check"), 7, r(ref, "uncovered"), 4000, r(req, "uncovered"), 90, r(req, "livestreams"), 2,
				"kickmon_collector_poll_uncovered_streamers", 6000, "kickmon_collector_poll_uncovered_period_seconds", 20), 159,
			"base round 200 (10002 streamers refreshed, 180 requests of its own); extra on purpose: 240 uncovered, 21 checks, 6 livestreams (6000 streamers without a channel id, each refreshed every 20s; target 20s); kicksim answered 477 (159 in 20s, scaled to 1m0s)"},
	}
	for _, tt := range tests {
		if got := pollRound(10_000, tt.total, 20*time.Second, before, tt.after); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
