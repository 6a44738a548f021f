package cli

import (
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The realtime line says in words which provider is in use and since when,
// or that the feed is blind and why.
func TestRealtimeLine(t *testing.T) {
	e := &env{now: func() time.Time { return testNow }, loc: time.UTC}
	tests := []struct {
		rt   *kickmonv1.RealtimeStatus
		want string
	}{
		{&kickmonv1.RealtimeStatus{Mode: "auto", Provider: "centrifugo", Negotiated: true, ProviderSince: at(5 * time.Minute), Health: kickmonv1.Health_HEALTH_OK,
			TokenExpiresAt: timestamppb.New(testNow.Add(40 * time.Minute))},
			"centrifugo (negotiated) since 2026-03-01 11:55:00 UTC (5m0s ago), 0 streamers blind, mode auto, token expires in 40m0s"},
		{&kickmonv1.RealtimeStatus{Mode: "auto", Health: kickmonv1.Health_HEALTH_DOWN, StreamersBlind: 3, BlindReason: "negotiation: 403 blocked; pusher fallback: socket down",
			LastNegotiationAt: at(5 * time.Second), LastNegotiationError: "negotiation: 403 blocked"},
			"BLIND: negotiation: 403 blocked; pusher fallback: socket down; polling carries on, 3 streamers blind, mode auto, last negotiation 5s ago: negotiation: 403 blocked"},
		{&kickmonv1.RealtimeStatus{Mode: "off", Health: kickmonv1.Health_HEALTH_DISABLED, BlindReason: "KICK_REALTIME=off"}, "off (KICK_REALTIME=off); polling carries on"},
	}
	for _, tt := range tests {
		if got := e.realtime(tt.rt); got != tt.want {
			t.Errorf("realtime line\n got %q\nwant %q", got, tt.want)
		}
	}
}
