package cli

import (
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// testNow is the "now" of every golden file.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is testNow minus d, as a timestamp.
func at(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(testNow.Add(-d)) }

const (
	live    = kickmonv1.LiveState_LIVE_STATE_LIVE
	offline = kickmonv1.LiveState_LIVE_STATE_OFFLINE
	unknown = kickmonv1.LiveState_LIVE_STATE_UNKNOWN
	poll    = kickmonv1.Source_SOURCE_POLL
	pusher  = kickmonv1.Source_SOURCE_PUSHER
)

func alice() *kickmonv1.Streamer {
	return &kickmonv1.Streamer{
		BroadcasterUserId: 101, Slug: "alice", ChannelId: 201, State: live,
		Title:      "Speedrunning Elden Ring, any% glitchless \u2014 day 3 of the grind\tno\nbreaks",
		CategoryId: 5, CategoryName: "Elden Ring", ViewerCount: 1234,
		LiveSince: at(2*time.Hour + 13*time.Minute),
		Session: &kickmonv1.Session{
			SessionId: "01JNSESSIONALICE", StartedAt: at(2*time.Hour + 13*time.Minute),
			Title: "Speedrunning Elden Ring", CategoryName: "Elden Ring", PeakViewers: 1500, DetectedBy: pusher,
		},
		LastConfirmedAt: at(12 * time.Second),
		Coverage: []*kickmonv1.Coverage{
			{Source: poll, Since: at(72 * time.Hour), LastConfirmedAt: at(12 * time.Second)},
			{Source: pusher, Since: at(3 * time.Hour), LastConfirmedAt: at(2*time.Hour + 13*time.Minute)},
		},
		AddedAt: at(72 * time.Hour),
	}
}

func bob() *kickmonv1.Streamer {
	return &kickmonv1.Streamer{
		BroadcasterUserId: 102, Slug: "bob", State: offline, Title: "chill stream", CategoryName: "Just Chatting",
		Session: &kickmonv1.Session{
			SessionId: "01JNSESSIONBOB", StartedAt: at(26 * time.Hour), EndedAt: at(20 * time.Hour),
			Title: "chill stream", CategoryName: "Just Chatting", PeakViewers: 87, DetectedBy: poll, ObservedLate: true,
		},
		LastConfirmedAt: at(45 * time.Second),
		Coverage: []*kickmonv1.Coverage{
			{Source: poll, Since: at(30 * time.Hour), LastConfirmedAt: at(45 * time.Second)},
			{Source: pusher, Blind: true, Reason: "no channel id", Since: at(30 * time.Hour)},
		},
		AddedAt: at(30 * time.Hour),
	}
}

func carol() *kickmonv1.Streamer {
	return &kickmonv1.Streamer{BroadcasterUserId: 103, Slug: "carol", State: unknown, AddedAt: at(5 * time.Second)}
}

func dave() *kickmonv1.Streamer {
	return &kickmonv1.Streamer{BroadcasterUserId: 104, Slug: "dave", State: unknown}
}

// testEvents is one event of each kind, observed a minute apart.
func testEvents() []*kickmonv1.Event {
	a, b, c := alice(), bob(), carol()
	ended := bob()
	ended.Session.EndedAt = at(0)
	updated := alice()
	updated.ViewerCount = 2000
	renamed := carol()
	renamed.Slug = "carol2"
	removed := dave()
	removed.Removed = true
	ev := []*kickmonv1.Event{
		{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, Streamer: c, Source: kickmonv1.Source_SOURCE_OPERATOR},
		{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, Streamer: a, Source: pusher, Session: a.Session, KickTime: a.Session.StartedAt},
		{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, Streamer: updated, Source: poll, Session: a.Session},
		{Kind: kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, Streamer: b, Source: kickmonv1.Source_SOURCE_COLLECTOR, Coverage: b.Coverage[1]},
		{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED, Streamer: renamed, Source: poll, PreviousSlug: "carol"},
		{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, Streamer: ended, Source: poll, Session: ended.Session},
		{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, Streamer: removed, Source: kickmonv1.Source_SOURCE_OPERATOR},
	}
	for i, e := range ev {
		e.ObservedAt = at(time.Duration(len(ev)-i) * time.Minute)
	}
	return ev
}

func testStatus() *kickmonv1.CollectorStatus {
	return &kickmonv1.CollectorStatus{
		Version:   "v1.0.0",
		StartedAt: at(3*time.Hour + 2*time.Minute),
		Sources: []*kickmonv1.SourceStatus{
			{Source: poll, Health: kickmonv1.Health_HEALTH_OK, Detail: "every streamer within 60s", LastSuccessAt: at(2 * time.Second), BreakerState: "closed", StreamersCovered: 3},
			{Source: pusher, Health: kickmonv1.Health_HEALTH_DEGRADED, Detail: "1 of 2 sockets up", LastSuccessAt: at(5 * time.Second),
				LastError: "socket 1: close 4201: reconnect", LastErrorAt: at(90 * time.Second), StreamersCovered: 1},
			{Source: kickmonv1.Source_SOURCE_WEBHOOK, Health: kickmonv1.Health_HEALTH_DISABLED, Detail: "KICKMON_WEBHOOK_ADDR unset"},
		},
		Sockets: []*kickmonv1.SocketStatus{
			{Id: 0, State: "connected", Channels: 1, ConnectedSince: at(2 * time.Hour), Reconnects: 0, Provider: "pusher"},
			{Id: 1, State: "backoff", Channels: 0, Reconnects: 3, LastCloseCode: 4201, LastError: "close 4201: reconnect", Provider: "pusher"},
		},
		Realtime: &kickmonv1.RealtimeStatus{Mode: "auto", Provider: "pusher", ProviderSince: at(10 * time.Minute), Health: kickmonv1.Health_HEALTH_DEGRADED,
			LastNegotiationAt: at(time.Minute), LastNegotiationError: "negotiation: 403 blocked", StreamersBlind: 2},
		Token:        &kickmonv1.TokenStatus{Valid: true, ExpiresAt: timestamppb.New(testNow.Add(45 * time.Minute)), Renewals: 2},
		Budget:       &kickmonv1.BudgetStatus{RequestsPerMinute: 600, UsedLastMinute: 42, RateLimitedTotal: 1, BackoffUntil: timestamppb.New(testNow.Add(20 * time.Second))},
		Spool:        &kickmonv1.SpoolStatus{Path: "/var/lib/kickmon/spool.db", SizeBytes: 3 << 20, MaxBytes: 1 << 30, AckedAt: at(3 * time.Second), Lost: []*kickmonv1.SeqRange{{First: 1, Last: 2}}},
		PollInterval: durationpb.New(time.Minute),
	}
}
