package feed_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/viewer/internal/feed"
	"github.com/kickmon/kickmon/viewer/internal/viewtest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// start runs a feed against srv until the test ends.
func start(t *testing.T, srv *kickapitest.Server) *feed.Feed {
	t.Helper()
	f := feed.New(viewtest.Dial(t, srv), feed.Options{
		Socket:       srv.Path(),
		StatusEvery:  50 * time.Millisecond,
		ConfirmEvery: 100 * time.Millisecond,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.Run(ctx); err != nil {
			t.Errorf("feed.Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

func waitSnap(t *testing.T, f *feed.Feed, what string, cond func(feed.Snapshot) bool) feed.Snapshot {
	t.Helper()
	var s feed.Snapshot
	viewtest.Wait(t, what, func() bool { s = f.Snapshot(); return cond(s) }, func() string { return describe(s) })
	return s
}

func describe(s feed.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%v err=%v seq=%d live=%d rows=%d\n", s.State, s.Err, s.LastSeq, s.Live, len(s.Rows))
	for _, e := range s.Log {
		fmt.Fprintf(&b, "  log: %s\n", line(e))
	}
	return b.String()
}

// line renders a log entry as "seq KIND slug" or "note: text".
func line(e feed.Entry) string {
	if e.Event == nil {
		return "note: " + e.Note
	}
	return fmt.Sprintf("%d %s %s", e.Event.GetSeq(), strings.TrimPrefix(e.Event.GetKind().String(), "EVENT_KIND_"), e.Event.GetStreamer().GetSlug())
}

func eventLines(s feed.Snapshot) []string {
	var out []string
	for _, e := range s.Log {
		if e.Event != nil {
			out = append(out, line(e))
		}
	}
	return out
}

func states(s feed.Snapshot) map[string]string {
	m := map[string]string{}
	for _, r := range s.Rows {
		m[r.Streamer.GetSlug()] = strings.TrimPrefix(r.Streamer.GetState().String(), "LIVE_STATE_")
	}
	return m
}

func TestFeedFollowsEvents(t *testing.T) {
	srv := kickapitest.NewServer(t)
	alice := viewtest.Streamer(1, "alice", "offline", 0, "", "")
	bob := viewtest.Streamer(2, "bob", "live", 10, "hello", "Just Chatting")
	srv.SetStreamers(alice, bob)
	f := start(t, srv)

	waitSnap(t, f, "the list", func(s feed.Snapshot) bool { return s.State == feed.Connected && len(s.Rows) == 2 })

	viewers := viewtest.Streamer(2, "bob", "live", 99, "hello", "Just Chatting")
	retitled := viewtest.Streamer(2, "bob", "live", 99, "new title", "Just Chatting")
	srv.Publish(
		viewtest.Started(alice),
		viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, viewers),
		viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, retitled),
		viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, viewtest.Streamer(3, "carol", "unknown", 0, "", "")),
	)
	s := waitSnap(t, f, "four events", func(s feed.Snapshot) bool { return s.LastSeq == 4 })

	tests := []struct {
		name      string
		got, want any
	}{
		{"states", states(s), map[string]string{"alice": "LIVE", "bob": "LIVE", "carol": "UNKNOWN"}},
		{"live count", s.Live, 2},
		// The viewer-count-only update is applied but not logged.
		{"log", eventLines(s), []string{"1 STREAM_STARTED alice", "3 STREAM_UPDATED bob", "4 STREAMER_ADDED carol"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}

	removed := viewtest.Streamer(1, "alice", "live", 0, "", "")
	removed.Removed = true
	srv.Publish(viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, removed))
	s = waitSnap(t, f, "removal", func(s feed.Snapshot) bool { return s.LastSeq == 5 })
	if diff := cmp.Diff(map[string]string{"bob": "LIVE", "carol": "UNKNOWN"}, states(s)); diff != "" {
		t.Errorf("after removal -want +got:\n%s", diff)
	}
	if s.Live != 1 {
		t.Errorf("live after removal = %d, want 1", s.Live)
	}
}

func TestFeedApplyIgnoresReplayedSeqs(t *testing.T) {
	f := feed.New(nil, feed.Options{})
	a := viewtest.Started(viewtest.Streamer(1, "a", "offline", 0, "", ""))
	a.Seq = 1
	b := viewtest.Ended(viewtest.Streamer(1, "a", "live", 0, "", ""))
	b.Seq = 2
	f.Apply(a, b)
	f.Apply(a, b) // a replay after reconnecting
	s := f.Snapshot()
	if diff := cmp.Diff([]string{"1 STREAM_STARTED a", "2 STREAM_ENDED a"}, eventLines(s)); diff != "" {
		t.Errorf("log -want +got:\n%s", diff)
	}
	if s.Live != 0 || s.LastSeq != 2 {
		t.Errorf("live=%d seq=%d, want 0 and 2", s.Live, s.LastSeq)
	}
}

func TestFeedLogIsBounded(t *testing.T) {
	f := feed.New(nil, feed.Options{LogSize: 3})
	for i := range uint64(5) {
		e := viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, viewtest.Streamer(int64(i), fmt.Sprint("s", i), "unknown", 0, "", ""))
		e.Seq = i + 1
		f.Apply(e)
	}
	want := []string{"3 STREAMER_ADDED s2", "4 STREAMER_ADDED s3", "5 STREAMER_ADDED s4"}
	if diff := cmp.Diff(want, eventLines(f.Snapshot())); diff != "" {
		t.Errorf("log -want +got:\n%s", diff)
	}
}

func TestFeedResubscribesFromLastSeq(t *testing.T) {
	srv := kickapitest.NewServer(t)
	alice := viewtest.Streamer(1, "alice", "offline", 0, "", "")
	srv.SetStreamers(alice)
	srv.Publish(viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, alice))
	f := start(t, srv)
	waitSnap(t, f, "connected", func(s feed.Snapshot) bool { return s.State == feed.Connected && s.LastSeq == 1 })

	srv.Stop()
	s := waitSnap(t, f, "disconnected", func(s feed.Snapshot) bool { return s.State == feed.Disconnected })
	if !strings.Contains(s.Err.Error(), "cannot reach kickcollector at "+srv.Path()) {
		t.Errorf("err = %v, want an explained one", s.Err)
	}
	if len(s.Rows) != 1 {
		t.Errorf("rows while disconnected = %d, want the last data (1)", len(s.Rows))
	}

	srv.Publish(viewtest.Started(alice), viewtest.Ended(alice))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	s = waitSnap(t, f, "reconnected with the events in between", func(s feed.Snapshot) bool {
		return s.State == feed.Connected && s.LastSeq == 3
	})
	// Seq 1 came with the list; 2 and 3 were published while disconnected.
	want := []string{"2 STREAM_STARTED alice", "3 STREAM_ENDED alice"}
	if diff := cmp.Diff(want, eventLines(s)); diff != "" {
		t.Errorf("log -want +got:\n%s", diff)
	}
	if !slices.ContainsFunc(s.Log, func(e feed.Entry) bool { return strings.HasPrefix(e.Note, "reconnected") }) {
		t.Errorf("no reconnect note in the log:\n%s", describe(s))
	}
}

func TestFeedReloadsWhenEventsWereDropped(t *testing.T) {
	srv := kickapitest.NewServer(t)
	alice := viewtest.Streamer(1, "alice", "offline", 0, "", "")
	srv.SetStreamers(alice)
	f := start(t, srv)
	waitSnap(t, f, "connected", func(s feed.Snapshot) bool { return s.State == feed.Connected })

	srv.Stop()
	waitSnap(t, f, "disconnected", func(s feed.Snapshot) bool { return s.State == feed.Disconnected })
	srv.Publish(viewtest.Started(alice), viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, viewtest.Streamer(2, "bob", "live", 5, "", "")))
	srv.DropBefore(srv.LastSeq() + 1)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	s := waitSnap(t, f, "reloaded list", func(s feed.Snapshot) bool { return s.State == feed.Connected && s.LastSeq == 2 })
	if diff := cmp.Diff(map[string]string{"alice": "LIVE", "bob": "LIVE"}, states(s)); diff != "" {
		t.Errorf("states -want +got:\n%s", diff)
	}
	if !slices.ContainsFunc(s.Log, func(e feed.Entry) bool { return strings.Contains(e.Note, "reloading the list") }) {
		t.Errorf("no reload note in the log:\n%s", describe(s))
	}
}

func TestFeedStatusAndRefresh(t *testing.T) {
	srv := kickapitest.NewServer(t)
	srv.SetStreamers(viewtest.Streamer(1, "alice", "offline", 0, "", ""), viewtest.Streamer(2, "bob", "offline", 0, "", ""))
	srv.SetStatus(&kickmonv1.CollectorStatus{Version: "v9", Budget: &kickmonv1.BudgetStatus{RequestsPerMinute: 600}})
	f := start(t, srv)
	s := waitSnap(t, f, "status", func(s feed.Snapshot) bool { return s.Status != nil })
	if got := s.Status.GetBudget().GetRequestsPerMinute(); got != 600 {
		t.Errorf("budget = %d, want 600", got)
	}

	tests := []struct {
		name  string
		slugs []string
		want  []string
		err   bool
	}{
		{"one", []string{"bob"}, []string{"bob"}, false},
		{"all", nil, []string{"bob", "alice", "bob"}, false},
		{"unknown", []string{"zed"}, []string{"bob", "alice", "bob"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.Refresh(context.Background(), tt.slugs...)
			if (err != nil) != tt.err {
				t.Errorf("Refresh(%v) = %v, want error %v", tt.slugs, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, srv.Refreshed()); diff != "" {
				t.Errorf("refreshed -want +got:\n%s", diff)
			}
		})
	}

	srv.DenyMutations(true)
	err := f.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("denied refresh = %v, want permission denied", err)
	}
}

// BenchmarkApply measures applying events to a 10k-streamer model, the
// work the feed does per event before the UI sees anything.
func BenchmarkApply(b *testing.B) {
	const n = 10_000
	f := feed.New(nil, feed.Options{})
	events := make([]*kickmonv1.Event, 1000)
	for i := range events {
		st := viewtest.Streamer(int64(i*7%n), fmt.Sprint("s", i*7%n), "live", int64(i), "t", "c")
		events[i] = viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, st)
	}
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range events {
			seq++
			e.Seq = seq
		}
		f.Apply(events...)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkSnapshot measures copying a 10k-streamer model for one redraw.
func BenchmarkSnapshot(b *testing.B) {
	const n = 10_000
	f := feed.New(nil, feed.Options{})
	for i := range n {
		e := viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, viewtest.Streamer(int64(i), fmt.Sprint("s", i), "offline", 0, "t", "c"))
		e.Seq = uint64(i + 1)
		f.Apply(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := f.Snapshot(); len(s.Rows) != n {
			b.Fatalf("rows = %d", len(s.Rows))
		}
	}
}

// Polls that confirm an unchanged state make no event; the feed still shows
// the newer confirmation time, and leaves the rest to the event stream.
func TestConfirmationsRefresh(t *testing.T) {
	srv := kickapitest.NewServer(t)
	t1 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	st := &kickmonv1.Streamer{BroadcasterUserId: 1, Slug: "alice", Title: "old", State: kickmonv1.LiveState_LIVE_STATE_OFFLINE, LastConfirmedAt: timestamppb.New(t1)}
	srv.SetStreamers(st)
	f := start(t, srv)
	waitSnap(t, f, "alice loaded", func(s feed.Snapshot) bool { return len(s.Rows) == 1 })
	t2 := t1.Add(time.Minute)
	newer := proto.Clone(st).(*kickmonv1.Streamer)
	newer.LastConfirmedAt, newer.Title = timestamppb.New(t2), "changed without an event"
	srv.SetStreamers(newer)
	s := waitSnap(t, f, "newer confirmation", func(s feed.Snapshot) bool {
		return len(s.Rows) == 1 && s.Rows[0].Streamer.GetLastConfirmedAt().AsTime().Equal(t2)
	})
	if got := s.Rows[0].Streamer.GetTitle(); got != "old" {
		t.Errorf("title = %q: a listing must not overrule the event stream", got)
	}
}

// TestLogIsCapped: the event log keeps the newest LogSize entries, oldest
// first, however many events and notes arrive.
func TestLogIsCapped(t *testing.T) {
	srv := kickapitest.NewServer(t)
	const size = 5
	f := feed.New(viewtest.Dial(t, srv), feed.Options{Socket: srv.Path(), LogSize: size})
	for seq := uint64(1); seq <= 1000; seq++ {
		ev := viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, viewtest.Streamer(int64(seq), fmt.Sprintf("s%d", seq), "unknown", 0, "", ""))
		ev.Seq = seq
		f.Apply(ev)
		if seq == 998 {
			f.Note("a note")
		}
	}
	got := f.Snapshot().Log
	var lines []string
	for _, e := range got {
		lines = append(lines, line(e))
	}
	want := []string{"997 STREAMER_ADDED s997", "998 STREAMER_ADDED s998", "note: a note", "999 STREAMER_ADDED s999", "1000 STREAMER_ADDED s1000"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}
