package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kickmon/kickmon/collector/internal/realtime"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// The realtime feed's metrics come from the Manager's status at scrape
// time: the provider in use, and counters that survive provider switches.
func TestRealtimeMetrics(t *testing.T) {
	m := New(func() *kickmonv1.CollectorStatus {
		return &kickmonv1.CollectorStatus{Realtime: &kickmonv1.RealtimeStatus{StreamersBlind: 4}}
	})
	m.Realtime(func() realtime.Status {
		return realtime.Status{Mode: "auto", Provider: realtime.Centrifugo,
			Stats: realtime.ManagerStats{Negotiations: 3, NegotiationFailures: 1, TokenRenewals: 5, TokenFailures: 2, Refusals: 1, Switches: 2},
			Providers: map[string]realtime.Stats{
				realtime.Pusher:     {Frames: 10, BadFrames: 1, Ignored: 2, Unmatched: 3, Refusals: 4, Reconnects: 5, Observations: 6},
				realtime.Centrifugo: {Frames: 7, Observations: 7},
			}}
	})
	want := `
# HELP kickmon_collector_realtime_provider 1 for the realtime provider in use (none: every provider 0).
# TYPE kickmon_collector_realtime_provider gauge
kickmon_collector_realtime_provider{provider="centrifugo"} 1
kickmon_collector_realtime_provider{provider="pusher"} 0
# HELP kickmon_collector_realtime_negotiations_total Realtime provider negotiations with Kick, by outcome.
# TYPE kickmon_collector_realtime_negotiations_total counter
kickmon_collector_realtime_negotiations_total{outcome="failed"} 1
kickmon_collector_realtime_negotiations_total{outcome="ok"} 2
# HELP kickmon_collector_realtime_tokens_total Centrifugo connection tokens fetched (renewals included), by outcome.
# TYPE kickmon_collector_realtime_tokens_total counter
kickmon_collector_realtime_tokens_total{outcome="failed"} 2
kickmon_collector_realtime_tokens_total{outcome="ok"} 5
# HELP kickmon_collector_realtime_bad_frames_total Realtime frames or events that could not be decoded, by provider.
# TYPE kickmon_collector_realtime_bad_frames_total counter
kickmon_collector_realtime_bad_frames_total{provider="centrifugo"} 0
kickmon_collector_realtime_bad_frames_total{provider="pusher"} 1
# HELP kickmon_collector_realtime_streamers_blind Watched streamers the realtime feed cannot see.
# TYPE kickmon_collector_realtime_streamers_blind gauge
kickmon_collector_realtime_streamers_blind 4
`
	names := []string{"kickmon_collector_realtime_provider", "kickmon_collector_realtime_negotiations_total", "kickmon_collector_realtime_tokens_total",
		"kickmon_collector_realtime_bad_frames_total", "kickmon_collector_realtime_streamers_blind"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}
