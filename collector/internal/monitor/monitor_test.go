package monitor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"

	"github.com/kickmon/kickmon/collector/internal/observation"
)

func TestMonitor(t *testing.T) {
	tests := []struct {
		name      string
		steps     []step
		want      []ev
		wantState kickmonv1.LiveState
	}{
		{
			name: "live and offline through polls only",
			steps: []step{
				add(1, "alpha", 0, 0).checks(1),
				live(poll, 60, 30).checks(),
				live(poll, 120, 30),
				offline(poll, 180).checks(),
				offline(poll, 240),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 30, 60, 30, "s1"),
				ended("POLL", 180, 180, 30, 180, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "push first, poll corrects the provisional start: one session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(pusher, 10, 8).checks(1),
				live(poll, 20, 5).checks(),
				live(pusher, 30, 8),
				live(poll, 80, 5),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(8), Obs: rel(10), State: "LIVE", Sess: "s1", Start: rel(8), Prov: true},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(20), State: "LIVE", Sess: "s1", Start: rel(5)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "official start earlier than push's beyond tolerance: push was late, same session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(pusher, 400, 400),
				live(poll, 410, 100),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(400), Obs: rel(400), State: "LIVE", Sess: "s1", Start: rel(400), Prov: true},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(410), State: "LIVE", Sess: "s1", Start: rel(100)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "push offline, poll confirms offline",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				offline(pusher, 100).checks(1),
				offline(poll, 105).checks(),
				tick(200),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				ended("PUSHER", 100, 100, 0, 100, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "push offline, poll says still live: a flap, no events",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				offline(pusher, 100).checks(1),
				live(poll, 105, 0),
				tick(200),
				tick(1000),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "push offline, API unreachable: grace expiry ends at the first report",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				offline(pusher, 100),
				offline(pusher, 110),
				tick(129),
				tick(130),
				tick(131),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				ended("COLLECTOR", 100, 130, 0, 100, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "webhook ended_at is Kick's end time",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(webhook, 10, 5).checks(),
				hookOffline(100, 5, 98).checks(1),
				offline(poll, 103),
			},
			want: []ev{
				addedEv(0),
				started("WEBHOOK", 5, 10, 5, "s1"),
				ended("WEBHOOK", 98, 100, 5, 98, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "webhook ended_at after grace expiry",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(webhook, 10, 5),
				offline(pusher, 99),
				hookOffline(100, 5, 98),
				tick(129),
			},
			want: []ev{
				addedEv(0),
				started("WEBHOOK", 5, 10, 5, "s1"),
				ended("COLLECTOR", 98, 129, 5, 98, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "flaps with the same started_at continue one session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				offline(pusher, 100),
				live(pusher, 101, 2),
				tick(200),
				offline(poll, 200),
				live(poll, 260, 0),
				offline(poll, 300),
				live(poll, 300+601, 0), // too late to continue: stale
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				ended("POLL", 200, 200, 0, 200, "s1"),
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(260), State: "LIVE", Sess: "s1", Start: rel(0)},
				ended("POLL", 300, 300, 0, 300, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "a new started_at is a new session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				live(poll, 500, 400),
				live(pusher, 600, 590).checks(1), // push disagrees with the official start: a hint
				offline(pusher, 700),
				live(poll, 710, 705),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				ended("POLL", 400, 500, 0, 400, "s1"),
				started("POLL", 400, 500, 400, "s2"),
				ended("PUSHER", 700, 700, 400, 700, "s2"),
				started("POLL", 705, 710, 705, "s3"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "duplicate reports from three sources: one event each",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(webhook, 10, 5),
				live(poll, 11, 5),
				live(pusher, 12, 6),
				offline(pusher, 100),
				hookOffline(101, 5, 99),
				offline(poll, 102),
				offline(poll, 103),
				offline(pusher, 104),
				hookOffline(105, 5, 99),
			},
			want: []ev{
				addedEv(0),
				started("WEBHOOK", 5, 10, 5, "s1"),
				ended("PUSHER", 99, 100, 5, 99, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "out-of-order observations never regress state",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				offline(poll, 5),            // older than this source's last report
				offline(pusher, 8).checks(), // older than the latest live report
				live(webhook, 20, -100),     // an earlier stream
				metadata(pusher, 30, title("new")),
				metadata(webhook, 25, title("old")), // older metadata
				offline(poll, 40),
				live(webhook, 35, 0), // seen before the confirmed end
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				{Kind: "STREAM_UPDATED", User: 1, Src: "PUSHER", Obs: rel(30), State: "LIVE", Sess: "s1", Start: rel(0), Title: "new"},
				{Kind: "STREAM_ENDED", User: 1, Src: "POLL", Kick: rel(40), Obs: rel(40), State: "OFFLINE", Sess: "s1", Start: rel(0), End: rel(40), Title: "new"},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "renames by user id",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0, slug("beta")),
				offline(webhook, 5, slug("alpha")), // older: neither rename nor end
				add(1, "gamma", 0, 20),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAMER_RENAMED", User: 1, Src: "POLL", Obs: rel(10), State: "UNKNOWN", Prev: "alpha"},
				started("POLL", 0, 10, 0, "s1"),
				{Kind: "STREAMER_RENAMED", User: 1, Src: "OPERATOR", Obs: rel(20), State: "LIVE", Prev: "beta"},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "title, category and viewer updates, peak viewers",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0, title("a"), viewers(5), category(1, "Chess")),
				live(poll, 70, 0, title("a"), viewers(5), category(1, "Chess")),
				live(poll, 130, 0, title("a"), viewers(9)),
				live(poll, 190, 0, title("b"), viewers(7)),
				metadata(pusher, 200, category(2, "Slots"), kick(195)),
				offline(poll, 300),
				metadata(webhook, 310, title("c")).checks(1), // not live: check instead
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "POLL", Kick: rel(0), Obs: rel(10), State: "LIVE", Sess: "s1", Start: rel(0), Peak: 5, Title: "a", Viewers: 5},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(130), State: "LIVE", Sess: "s1", Start: rel(0), Peak: 9, Title: "a", Viewers: 9},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(190), State: "LIVE", Sess: "s1", Start: rel(0), Peak: 9, Title: "b", Viewers: 7},
				{Kind: "STREAM_UPDATED", User: 1, Src: "PUSHER", Kick: rel(195), Obs: rel(200), State: "LIVE", Sess: "s1", Start: rel(0), Peak: 9, Title: "b", Viewers: 7},
				{Kind: "STREAM_ENDED", User: 1, Src: "POLL", Kick: rel(300), Obs: rel(300), State: "OFFLINE", Sess: "s1", Start: rel(0), End: rel(300), Peak: 9, Title: "b"},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "thumbnail rides on the next event and is not carried into a new session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0, title("a"), thumb("https://img.test/1")),
				live(poll, 70, 0, title("a"), thumb("https://img.test/2")), // thumbnail alone: no event
				live(poll, 130, 0, title("b")),                             // none reported: kept
				offline(poll, 300),
				live(poll, 400, 390, title("c")),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "POLL", Kick: rel(0), Obs: rel(10), State: "LIVE", Sess: "s1", Start: rel(0), Title: "a", Thumb: "https://img.test/1"},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(130), State: "LIVE", Sess: "s1", Start: rel(0), Title: "b", Thumb: "https://img.test/2"},
				{Kind: "STREAM_ENDED", User: 1, Src: "POLL", Kick: rel(300), Obs: rel(300), State: "OFFLINE", Sess: "s1", Start: rel(0), End: rel(300), Title: "b", Thumb: "https://img.test/2"},
				{Kind: "STREAM_STARTED", User: 1, Src: "POLL", Kick: rel(390), Obs: rel(400), State: "LIVE", Sess: "s2", Start: rel(390), Title: "c"},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "remove while live ends the session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				remove(1, 50),
				live(poll, 60, 0), // not watched: ignored
				remove(1, 70),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				ended("COLLECTOR", 50, 50, 0, 50, "s1"),
				{Kind: "STREAMER_REMOVED", User: 1, Src: "OPERATOR", Obs: rel(50), State: "OFFLINE"},
			},
		},
		{
			name: "re-add keeps the last session; a new channel id is learned",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 0),
				remove(1, 50),
				add(1, "alpha", 0, 5000).checks(1),
				live(poll, 5060, 0), // the same stream, still live: continues s1
				add(1, "alpha", 0, 5100),
				add(1, "alpha", 33, 5200),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 0, 10, 0, "s1"),
				ended("COLLECTOR", 50, 50, 0, 50, "s1"),
				{Kind: "STREAMER_REMOVED", User: 1, Src: "OPERATOR", Obs: rel(50), State: "OFFLINE"},
				addedEv(5000),
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(5060), State: "LIVE", Sess: "s1", Start: rel(0)},
				{Kind: "COVERAGE_CHANGED", User: 1, Src: "OPERATOR", Obs: rel(5200), State: "LIVE", Cov: "PUSHER seeing"},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "a stream already running when added is observed late",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 60, -600),
				live(poll, 900, 800),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "POLL", Kick: rel(-600), Obs: rel(60), State: "LIVE", Sess: "s1", Start: rel(-600), Late: true},
				{Kind: "STREAM_ENDED", User: 1, Src: "POLL", Kick: rel(800), Obs: rel(900), State: "OFFLINE", Sess: "s1", Start: rel(-600), End: rel(800), Late: true},
				started("POLL", 800, 900, 800, "s2"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			// The e2e case: S1 ends, the streamer goes live again seconds
			// later; push's created_at is after S1's end, Kick's official
			// start 2 s before it.
			name: "restart after the end with a new start: a second session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 8, 7),
				offline(pusher, 9).checks(1),
				offline(poll, 10),
				live(pusher, 12, 12).checks(1), // after the end: a restart
				live(poll, 13, 10).checks(),    // corrects the provisional start
				live(poll, 20, 10),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 7, 8, 7, "s1"),
				ended("PUSHER", 9, 9, 7, 9, "s1"),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(12), Obs: rel(12), State: "LIVE", Sess: "s2", Start: rel(12), Prov: true},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(13), State: "LIVE", Sess: "s2", Start: rel(10)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "restart seen by the poll only: an official start 2 s later is a new session",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 8, 7),
				offline(poll, 10),
				live(webhook, 14, 9).checks(),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 7, 8, 7, "s1"),
				ended("POLL", 10, 10, 7, 10, "s1"),
				started("WEBHOOK", 9, 14, 9, "s2"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "stale push live (created_at before the end) is only a hint; the official equal start reopens",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 5),
				offline(pusher, 100),
				offline(poll, 101),
				live(pusher, 102, 100).checks(1), // created_at at the end: stale
				live(pusher, 103, 8).checks(1),   // before the end: stale
				live(poll, 104, 6).checks(),      // Kick: the same stream (±1 s)
			},
			want: []ev{
				addedEv(0),
				started("POLL", 5, 10, 5, "s1"),
				ended("PUSHER", 100, 100, 5, 100, "s1"),
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(104), State: "LIVE", Sess: "s1", Start: rel(5)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "an ended provisional session is reopened and corrected by an official start before it",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(pusher, 10, 10),
				offline(pusher, 20),
				offline(poll, 21), // the API had caught up: 11 s after push's report
				live(poll, 30, 8),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(10), Obs: rel(10), State: "LIVE", Sess: "s1", Start: rel(10), Prov: true},
				{Kind: "STREAM_ENDED", User: 1, Src: "PUSHER", Kick: rel(20), Obs: rel(20), State: "OFFLINE", Sess: "s1", Start: rel(10), Prov: true, End: rel(20)},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(30), State: "LIVE", Sess: "s1", Start: rel(8)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "a provisional session Kick says is the previous stream: it ends at its start, the previous one continues",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 5),
				offline(pusher, 100),
				offline(poll, 101),
				live(pusher, 103, 102),
				live(poll, 104, 5), // the official start of s1
				live(pusher, 110, 102),
				offline(poll, 200),
				live(poll, 300, 290),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 5, 10, 5, "s1"),
				ended("PUSHER", 100, 100, 5, 100, "s1"),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(102), Obs: rel(103), State: "LIVE", Sess: "s2", Start: rel(102), Prov: true},
				{Kind: "STREAM_ENDED", User: 1, Src: "POLL", Kick: rel(102), Obs: rel(104), State: "OFFLINE", Sess: "s2", Start: rel(102), Prov: true, End: rel(102)},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(104), State: "LIVE", Sess: "s1", Start: rel(5)},
				ended("POLL", 200, 200, 5, 200, "s1"),
				started("POLL", 290, 300, 290, "s3"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "an ended provisional session Kick says was the previous stream: the previous one continues",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 5),
				offline(poll, 100),
				live(pusher, 103, 102),
				offline(pusher, 105),
				offline(poll, 110),
				live(poll, 120, 5),
				live(poll, 130, 102), // s2's provisional start, now taken: an earlier stream
			},
			want: []ev{
				addedEv(0),
				started("POLL", 5, 10, 5, "s1"),
				ended("POLL", 100, 100, 5, 100, "s1"),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(102), Obs: rel(103), State: "LIVE", Sess: "s2", Start: rel(102), Prov: true},
				{Kind: "STREAM_ENDED", User: 1, Src: "PUSHER", Kick: rel(105), Obs: rel(105), State: "OFFLINE", Sess: "s2", Start: rel(102), Prov: true, End: rel(105)},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(120), State: "LIVE", Sess: "s1", Start: rel(5)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "the previous stream's start after ContinueWithin: stale, the provisional session stays",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(poll, 10, 5),
				offline(poll, 100),
				live(pusher, 800, 799),
				live(poll, 801, 5),
			},
			want: []ev{
				addedEv(0),
				started("POLL", 5, 10, 5, "s1"),
				ended("POLL", 100, 100, 5, 100, "s1"),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(799), Obs: rel(800), State: "LIVE", Sess: "s2", Start: rel(799), Prov: true},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "API lag: a poll offline right after push's go-live is not yet confirmed",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(pusher, 10, 10).checks(1),
				offline(poll, 11).checks(), // asked 1 s after: the API may lag
				tick(14).checks(),
				tick(15).checks(1), // APILag passed: ask again
				live(poll, 16, 8).checks(),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(10), Obs: rel(10), State: "LIVE", Sess: "s1", Start: rel(10), Prov: true},
				{Kind: "STREAM_UPDATED", User: 1, Src: "POLL", Obs: rel(16), State: "LIVE", Sess: "s1", Start: rel(8)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_LIVE,
		},
		{
			name: "API lag: a short stream still ends at push's offline once the API is trusted",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(pusher, 10, 10),
				offline(pusher, 12).checks(1),
				offline(poll, 13).checks(),
				tick(15).checks(1),
				offline(poll, 15),
			},
			want: []ev{
				addedEv(0),
				{Kind: "STREAM_STARTED", User: 1, Src: "PUSHER", Kick: rel(10), Obs: rel(10), State: "LIVE", Sess: "s1", Start: rel(10), Prov: true},
				{Kind: "STREAM_ENDED", User: 1, Src: "PUSHER", Kick: rel(12), Obs: rel(12), State: "OFFLINE", Sess: "s1", Start: rel(10), Prov: true, End: rel(12)},
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "API lag: once a poll listed the stream, its offline ends the session at once",
			steps: []step{
				add(1, "alpha", 0, 0),
				live(webhook, 10, 9),
				live(poll, 11, 9),
				offline(poll, 12),
			},
			want: []ev{
				addedEv(0),
				started("WEBHOOK", 9, 10, 9, "s1"),
				ended("POLL", 12, 12, 9, 12, "s1"),
			},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
		{
			name: "offline first report: unknown becomes offline without events",
			steps: []step{
				add(1, "alpha", 0, 0),
				offline(poll, 10),
				offline(pusher, 20),
				tick(100),
			},
			want:      []ev{addedEv(0)},
			wantState: kickmonv1.LiveState_LIVE_STATE_OFFLINE,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMonitor()
			got := run(t, m, tt.steps)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			st, ok := m.Streamer(1)
			if tt.wantState == kickmonv1.LiveState_LIVE_STATE_UNSPECIFIED {
				if ok {
					t.Errorf("streamer 1 still watched: %v", st)
				}
				return
			}
			if !ok {
				t.Fatal("streamer 1 not watched")
			}
			if st.State != tt.wantState {
				t.Errorf("state = %v, want %v", st.State, tt.wantState)
			}
			if _, pending := m.NextDeadline(); pending {
				t.Errorf("a grace window is still pending")
			}
		})
	}
}

func TestCoverage(t *testing.T) {
	cov := func(user int64, src string, obs int, state, c string) ev {
		return ev{Kind: "COVERAGE_CHANGED", User: user, Src: src, Obs: rel(obs), State: state, Cov: c}
	}
	m := newTestMonitor()
	steps := []step{
		add(1, "alpha", 0, 0),
		add(2, "bravo", 22, 0),
		coverage(pusher, 10, true, "socket down"), // only user 2 has a channel
		coverage(pusher, 11, true, "socket down"), // no change
		coverage(pusher, 12, false, ""),
		coverage(poll, 20, true, "blocked", 1),
		coverage(poll, 21, true, "blocked", 1),
		coverage(poll, 22, true, "429", 1), // the reason changed
		coverage(poll, 30, false, ""),      // all: user 2 had no entry, not a change
		coverage(poll, 25, true, "blocked", 1),
		coverage(webhook, 26, false, "", 1, 99), // unknown id ignored
		coverage(kickmonv1.Source_SOURCE_UNSPECIFIED, 27, true, "?"),
		live(poll, 40, 35, channel(11)), // learns user 1's channel id
		coverage(pusher, 50, true, "socket down", 1, 2),
	}
	got := run(t, m, steps)
	want := []ev{
		addedEv(0),
		{Kind: "STREAMER_ADDED", User: 2, Src: "OPERATOR", Obs: rel(0), State: "UNKNOWN"},
		cov(2, "PUSHER", 10, "UNKNOWN", "PUSHER blind:socket down"),
		cov(2, "PUSHER", 12, "UNKNOWN", "PUSHER seeing"),
		cov(1, "POLL", 20, "UNKNOWN", "POLL blind:blocked"),
		cov(1, "POLL", 22, "UNKNOWN", "POLL blind:429"),
		cov(1, "POLL", 30, "UNKNOWN", "POLL seeing"),
		cov(1, "POLL", 40, "UNKNOWN", "PUSHER seeing"),
		started("POLL", 35, 40, 35, "s1"),
		cov(1, "PUSHER", 50, "LIVE", "PUSHER blind:socket down"),
		cov(2, "PUSHER", 50, "UNKNOWN", "PUSHER blind:socket down"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	st, _ := m.Streamer(1)
	wantCov := []*kickmonv1.Coverage{
		{Source: poll, Since: timestamppb.New(at(30)), LastConfirmedAt: timestamppb.New(at(40))},
		{Source: pusher, Blind: true, Reason: "socket down", Since: timestamppb.New(at(50))},
		{Source: webhook, Since: timestamppb.New(at(26))},
	}
	if diff := cmp.Diff(wantCov, st.Coverage, protocmp.Transform()); diff != "" {
		t.Errorf("coverage (-want +got):\n%s", diff)
	}
}

// TestFullEvents compares whole events, streamer state included.
func TestFullEvents(t *testing.T) {
	m := newTestMonitor()
	r := m.Add(Identity{UserID: 1, Slug: "alpha"}, at(0))
	noChannel := &kickmonv1.Coverage{Source: pusher, Blind: true, Reason: ReasonNoChannelID, Since: timestamppb.New(at(0))}
	want := []*kickmonv1.Event{{
		Kind:   kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED,
		Source: kickmonv1.Source_SOURCE_OPERATOR,
		Streamer: &kickmonv1.Streamer{
			BroadcasterUserId: 1, Slug: "alpha", State: kickmonv1.LiveState_LIVE_STATE_UNKNOWN,
			Coverage: []*kickmonv1.Coverage{noChannel}, AddedAt: timestamppb.New(at(0)),
		},
		ObservedAt: timestamppb.New(at(0)),
	}}
	if diff := cmp.Diff(want, r.Events, protocmp.Transform()); diff != "" {
		t.Errorf("Add (-want +got):\n%s", diff)
	}

	o := status(poll, 60, observation.Live, title("t"), viewers(3), category(7, "Chess"), channel(9))
	o.StartedAt = at(30)
	r = m.Observe(o)
	session := &kickmonv1.Session{
		SessionId: "s1", StartedAt: timestamppb.New(at(30)), Title: "t", CategoryName: "Chess",
		PeakViewers: 3, DetectedBy: poll,
	}
	pollCov := &kickmonv1.Coverage{Source: poll, Since: timestamppb.New(at(60)), LastConfirmedAt: timestamppb.New(at(60))}
	seeing := &kickmonv1.Coverage{Source: pusher, Since: timestamppb.New(at(60))}
	stBefore := &kickmonv1.Streamer{
		BroadcasterUserId: 1, Slug: "alpha", ChannelId: 9, State: kickmonv1.LiveState_LIVE_STATE_UNKNOWN,
		Coverage: []*kickmonv1.Coverage{pollCov, seeing}, AddedAt: timestamppb.New(at(0)),
	}
	stLive := &kickmonv1.Streamer{
		BroadcasterUserId: 1, Slug: "alpha", ChannelId: 9, State: kickmonv1.LiveState_LIVE_STATE_LIVE,
		Title: "t", CategoryId: 7, CategoryName: "Chess", ViewerCount: 3, LiveSince: timestamppb.New(at(30)),
		Session: session, LastConfirmedAt: timestamppb.New(at(60)),
		Coverage: []*kickmonv1.Coverage{pollCov, seeing}, AddedAt: timestamppb.New(at(0)),
	}
	want = []*kickmonv1.Event{
		{
			Kind: kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, Source: poll, Streamer: stBefore,
			ObservedAt: timestamppb.New(at(60)), Coverage: seeing,
		},
		{
			Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, Source: poll, Streamer: stLive,
			KickTime: timestamppb.New(at(30)), ObservedAt: timestamppb.New(at(60)), Session: session,
		},
	}
	if diff := cmp.Diff(want, r.Events, protocmp.Transform()); diff != "" {
		t.Errorf("Observe (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ChannelLearned{{UserID: 1, ChannelID: 9}}, r.Channels); diff != "" {
		t.Errorf("Channels (-want +got):\n%s", diff)
	}

	// Events are copies: changing the monitor later does not change them.
	m.Observe(status(poll, 120, observation.Offline))
	if diff := cmp.Diff(want[1].Streamer, r.Events[1].Streamer, protocmp.Transform()); diff != "" {
		t.Errorf("event state changed after a later observation (-want +got):\n%s", diff)
	}
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name  string
		after []step
		want  []ev
	}{
		{
			name:  "the same started_at continues the restored session",
			after: []step{live(poll, 1000, 30), offline(poll, 1100)},
			want:  []ev{ended("POLL", 1100, 1100, 30, 1100, "s1")},
		},
		{
			name:  "push offline after restart: grace expiry ends the restored session",
			after: []step{offline(pusher, 1000), tick(1030)},
			want:  []ev{ended("COLLECTOR", 1000, 1030, 30, 1000, "s1")},
		},
		{
			name:  "a new stream started while down is observed late",
			after: []step{live(poll, 1000, 700)},
			want: []ev{
				ended("POLL", 700, 1000, 30, 700, "s1"),
				{Kind: "STREAM_STARTED", User: 1, Src: "POLL", Kick: rel(700), Obs: rel(1000), State: "LIVE", Sess: "s2", Start: rel(700), Late: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := seqIDs()
			before := New(Config{NewSessionID: ids})
			run(t, before, []step{add(1, "alpha", 5, 0), live(poll, 60, 30), add(2, "bravo", 0, 0), remove(2, 70)})
			snapshot := append(before.Streamers(), before.Removed()...) // the spool keeps removed streamers too

			m := New(Config{NewSessionID: ids})
			r := m.Restore(snapshot, at(900))
			if diff := cmp.Diff(Result{Check: []int64{1}, Channels: []ChannelLearned{{UserID: 1, ChannelID: 5}}}, r); diff != "" {
				t.Errorf("Restore (-want +got):\n%s", diff)
			}
			if got := m.Len(); got != 1 {
				t.Errorf("Len = %d, want 1 (the removed streamer is not watched)", got)
			}
			got := run(t, m, tt.after)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events after restore (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueries(t *testing.T) {
	m := newTestMonitor()
	run(t, m, []step{
		add(1, "zulu", 0, 0),
		add(2, "alpha", 0, 0),
		live(poll, 10, 0, user(1), slug("mike")),
	})
	var slugs []string
	for _, s := range m.Streamers() {
		slugs = append(slugs, s.Slug)
	}
	if diff := cmp.Diff([]string{"alpha", "mike"}, slugs); diff != "" {
		t.Errorf("Streamers slugs (-want +got):\n%s", diff)
	}
	if s, ok := m.BySlug("mike"); !ok || s.BroadcasterUserId != 1 {
		t.Errorf("BySlug(mike) = %v, %v; want user 1", s, ok)
	}
	if _, ok := m.BySlug("zulu"); ok {
		t.Error("BySlug(zulu) found the old slug")
	}
	s, _ := m.Streamer(1)
	s.Slug = "changed"
	if s2, _ := m.Streamer(1); s2.Slug != "mike" {
		t.Errorf("Streamer returned shared state: slug %q", s2.Slug)
	}
	m.Observe(status(pusher, 20, observation.Offline, user(1)))
	if d, ok := m.NextDeadline(); !ok || !d.Equal(at(20).Add(DefaultOfflineGrace)) {
		t.Errorf("NextDeadline = %v, %v; want %v", d, ok, at(20).Add(DefaultOfflineGrace))
	}

	// A poll offline within APILag of push's go-live asks again later.
	o := status(pusher, 30, observation.Live, user(2))
	o.StartedAt, o.Provisional = at(30), true
	m.Observe(o)
	m.Observe(status(poll, 31, observation.Offline, user(2)))
	if d, ok := m.NextDeadline(); !ok || !d.Equal(at(30).Add(DefaultAPILag)) {
		t.Errorf("NextDeadline after a lagging poll = %v, %v; want %v", d, ok, at(30).Add(DefaultAPILag))
	}
}

// TestRealtimeCoverage: the realtime feed has one coverage entry per
// streamer whichever provider reports; "no channel id" reports refine the
// reason of the streamers without a channel id only, and Centrifugo's
// status reports are applied (not dropped as an unknown source).
func TestRealtimeCoverage(t *testing.T) {
	centrifugo := kickmonv1.Source_SOURCE_CENTRIFUGO
	cov := func(user int64, src string, obs int, state, c string) ev {
		return ev{Kind: "COVERAGE_CHANGED", User: user, Src: src, Obs: rel(obs), State: state, Cov: c}
	}
	m := newTestMonitor()
	steps := []step{
		add(1, "alpha", 0, 0),
		add(2, "bravo", 22, 0),
		coverage(pusher, 10, true, "provider refused: pusher 4001 App key not in this cluster"),
		coverage(centrifugo, 12, false, "", 2),                                                // takes the entry over
		coverage(centrifugo, 13, true, ReasonNoChannelID+": livestreams endpoint gone (410)"), // user 1 only
		coverage(centrifugo, 14, true, "negotiation: 403 blocked"),                            // user 2 only
		live(centrifugo, 20, 19, channel(22)),
	}
	got := run(t, m, steps)
	want := []ev{
		addedEv(0),
		{Kind: "STREAMER_ADDED", User: 2, Src: "OPERATOR", Obs: rel(0), State: "UNKNOWN"},
		cov(2, "PUSHER", 10, "UNKNOWN", "PUSHER blind:provider refused: pusher 4001 App key not in this cluster"),
		cov(2, "CENTRIFUGO", 12, "UNKNOWN", "CENTRIFUGO seeing"),
		cov(1, "CENTRIFUGO", 13, "UNKNOWN", "CENTRIFUGO blind:no channel id: livestreams endpoint gone (410)"),
		cov(2, "CENTRIFUGO", 14, "UNKNOWN", "CENTRIFUGO blind:negotiation: 403 blocked"),
		cov(1, "CENTRIFUGO", 20, "UNKNOWN", "CENTRIFUGO seeing"), // learned its channel id
		started("CENTRIFUGO", 19, 20, 19, "s1"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, id := range []int64{1, 2} {
		st, _ := m.Streamer(id)
		n := 0
		for _, c := range st.Coverage {
			if c.Source == pusher || c.Source == centrifugo {
				n++
			}
		}
		if n != 1 {
			t.Errorf("streamer %d has %d realtime coverage entries; want 1: %v", id, n, st.Coverage)
		}
	}
}
