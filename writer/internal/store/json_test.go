package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The hand-written encoder must say what protojson (UseProtoNames) says.
func TestJSONMatchesProtojson(t *testing.T) {
	full := &kickmonv1.Streamer{
		BroadcasterUserId: 1 << 40, Slug: "a\"b\\c\n\t\x01é✓", ChannelId: 7, State: kickmonv1.LiveState_LIVE_STATE_LIVE,
		Title: "<title> & 'quotes'", CategoryId: 15, CategoryName: "Just Chatting", ViewerCount: -3,
		LiveSince: timestamppb.New(time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)),
		Session: &kickmonv1.Session{SessionId: "01J", StartedAt: timestamppb.New(time.Date(2026, 5, 1, 18, 0, 0, 120_000_000, time.UTC)),
			StartedAtProvisional: true, EndedAt: timestamppb.New(time.Date(2026, 5, 1, 19, 0, 0, 123_456_000, time.UTC)),
			Title: "t", CategoryName: "c", PeakViewers: 99, DetectedBy: kickmonv1.Source_SOURCE_PUSHER, ObservedLate: true},
		LastConfirmedAt: timestamppb.New(time.Date(1999, 12, 31, 23, 59, 59, 123_456_789, time.UTC)),
		Coverage: []*kickmonv1.Coverage{
			{Source: kickmonv1.Source_SOURCE_PUSHER, Blind: true, Reason: "socket down", Since: timestamppb.New(time.Unix(0, 1)), LastConfirmedAt: timestamppb.New(time.Unix(5, 0))},
			{Source: kickmonv1.Source_SOURCE_POLL},
		},
		AddedAt: timestamppb.New(time.Unix(1, 0)),
		Removed: true, ThumbnailUrl: "https://images.kick.com/video_thumbnails/a/1/720.webp",
	}
	tests := []struct {
		name string
		m    proto.Message
		got  []byte
	}{
		{"empty streamer", &kickmonv1.Streamer{}, appendStreamer(nil, &kickmonv1.Streamer{})},
		{"full streamer", full, appendStreamer(nil, full)},
		{"coverage", full.Coverage[0], appendCoverage(nil, full.Coverage[0])},
		{"session", full.Session, appendSession(nil, full.Session)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := jsonOpts.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			var w, g any
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(tt.got, &g); err != nil {
				t.Fatalf("invalid JSON %s: %v", tt.got, err)
			}
			if d := cmp.Diff(w, g); d != "" {
				t.Errorf("(-protojson +ours):\n%s", d)
			}
		})
	}
}
