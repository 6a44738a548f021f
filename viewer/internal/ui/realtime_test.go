package ui

import (
	"strings"
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/viewer/internal/feed"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The header says in words which realtime provider is in use and since
// when, or that the realtime feed is blind and why; the footer shows the
// provider's source (Centrifugo or Pusher).
func TestHeaderRealtime(t *testing.T) {
	now := time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC)
	line := func(l Line) string {
		var b strings.Builder
		for _, s := range l {
			b.WriteString(s.Text)
		}
		return b.String()
	}
	tests := []struct {
		name   string
		st     *kickmonv1.CollectorStatus
		header string // what the header must contain; "" for no realtime words
		footer string
	}{
		{"before the first status", nil, "", "status: waiting"},
		{"centrifugo", &kickmonv1.CollectorStatus{
			Realtime: &kickmonv1.RealtimeStatus{Mode: "auto", Provider: "centrifugo", Negotiated: true, Health: kickmonv1.Health_HEALTH_OK,
				ProviderSince: timestamppb.New(now.Add(-12 * time.Minute))},
			Sources: []*kickmonv1.SourceStatus{{Source: kickmonv1.Source_SOURCE_CENTRIFUGO, Health: kickmonv1.Health_HEALTH_OK}},
		}, "realtime centrifugo since 23:18 (12m", "centrifugo ok"},
		{"blind", &kickmonv1.CollectorStatus{
			Realtime: &kickmonv1.RealtimeStatus{Mode: "auto", Health: kickmonv1.Health_HEALTH_DOWN, BlindReason: "negotiation: 403 blocked", StreamersBlind: 3},
			Sources:  []*kickmonv1.SourceStatus{{Source: kickmonv1.Source_SOURCE_CENTRIFUGO, Health: kickmonv1.Health_HEALTH_DOWN}},
		}, "REALTIME BLIND: negotiation: 403 blocked", "centrifugo down"},
		{"pusher fallback", &kickmonv1.CollectorStatus{
			Realtime: &kickmonv1.RealtimeStatus{Mode: "auto", Provider: "pusher", Health: kickmonv1.Health_HEALTH_DEGRADED, StreamersBlind: 1,
				ProviderSince: timestamppb.New(now.Add(-time.Minute))},
			Sources: []*kickmonv1.SourceStatus{{Source: kickmonv1.Source_SOURCE_PUSHER, Health: kickmonv1.Health_HEALTH_DEGRADED}},
		}, "realtime pusher since 23:29 (1m) (fallback), 1 blind", "pusher degraded"},
		{"off", &kickmonv1.CollectorStatus{Realtime: &kickmonv1.RealtimeStatus{Mode: "off", Health: kickmonv1.Health_HEALTH_DISABLED}}, "realtime off", "pusher -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := feed.Snapshot{State: feed.Connected, Status: tt.st, StatusAt: now}
			h := line(Header(Theme{}, snap, View{}, now))
			if tt.header == "" && strings.Contains(h, "realtime") || tt.header != "" && !strings.Contains(h, tt.header) {
				t.Errorf("header %q; want it to say %q", h, tt.header)
			}
			if f := line(Footer(Theme{}, snap, now)); !strings.Contains(f, tt.footer) {
				t.Errorf("footer %q; want it to say %q", f, tt.footer)
			}
		})
	}
}
