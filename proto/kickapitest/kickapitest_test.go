package kickapitest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var (
	alice = &kickmonv1.Streamer{BroadcasterUserId: 1, Slug: "alice", State: kickmonv1.LiveState_LIVE_STATE_LIVE}
	bob   = &kickmonv1.Streamer{BroadcasterUserId: 2, Slug: "bob", State: kickmonv1.LiveState_LIVE_STATE_OFFLINE}
	carol = &kickmonv1.Streamer{BroadcasterUserId: 3, Slug: "carol", State: kickmonv1.LiveState_LIVE_STATE_UNKNOWN}
)

// Every RPC goes through real gRPC on the fake's Unix socket.
func TestRoundTripEveryRPC(t *testing.T) {
	s := kickapitest.NewServer(t)
	s.SetStreamers(bob, alice)
	s.SetResolvable(carol)
	c := s.Dial(t)
	ctx := ctx(t)

	list, err := c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
	if err != nil {
		t.Fatalf("ListStreamers: %v", err)
	}
	if diff := cmp.Diff([]*kickmonv1.Streamer{alice, bob}, list.GetStreamers(), protocmp.Transform()); diff != "" {
		t.Errorf("ListStreamers (-want +got):\n%s", diff)
	}

	got, err := c.GetStreamer(ctx, &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_Slug{Slug: "bob"}})
	if err != nil || got.GetStreamer().GetBroadcasterUserId() != 2 {
		t.Errorf("GetStreamer(bob) = %v, %v", got, err)
	}
	if _, err := c.GetStreamer(ctx, &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_BroadcasterUserId{BroadcasterUserId: 99}}); status.Code(err) != codes.NotFound {
		t.Errorf("GetStreamer(99) error = %v, want NotFound", err)
	}

	add, err := c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: []string{"carol", "nobody", "alice"}})
	if err != nil {
		t.Fatalf("AddStreamers: %v", err)
	}
	var outcomes []string
	for _, r := range add.GetResults() {
		switch {
		case r.GetError() != "":
			outcomes = append(outcomes, r.GetSlug()+":error")
		case r.GetUnchanged():
			outcomes = append(outcomes, r.GetSlug()+":unchanged")
		default:
			outcomes = append(outcomes, r.GetSlug()+":added")
		}
	}
	if diff := cmp.Diff([]string{"carol:added", "nobody:error", "alice:unchanged"}, outcomes); diff != "" {
		t.Errorf("AddStreamers outcomes (-want +got):\n%s", diff)
	}

	rm, err := c.RemoveStreamers(ctx, &kickmonv1.RemoveStreamersRequest{Slugs: []string{"bob", "ghost"}})
	if err != nil || rm.GetResults()[0].GetError() != "" || rm.GetResults()[1].GetError() == "" {
		t.Errorf("RemoveStreamers = %v, %v", rm, err)
	}

	if _, err := c.RefreshStreamers(ctx, &kickmonv1.RefreshStreamersRequest{}); err != nil {
		t.Fatalf("RefreshStreamers: %v", err)
	}
	if diff := cmp.Diff([]string{"alice", "carol"}, s.Refreshed()); diff != "" {
		t.Errorf("refreshed (-want +got):\n%s", diff)
	}

	// Add and remove published two events; watch them from the start.
	stream, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err != nil {
		t.Fatalf("WatchEvents: %v", err)
	}
	var kinds []kickmonv1.EventKind
	for len(kinds) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		for _, e := range resp.GetEvents() {
			kinds = append(kinds, e.GetKind())
		}
	}
	want := []kickmonv1.EventKind{kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("watched kinds (-want +got):\n%s", diff)
	}

	ack, err := c.AckEvents(ctx, &kickmonv1.AckEventsRequest{Seq: 2})
	if err != nil || ack.GetAckedSeq() != 2 || s.Acked() != 2 {
		t.Errorf("AckEvents = %v, %v (fake acked %d)", ack, err, s.Acked())
	}
	if _, err := c.AckEvents(ctx, &kickmonv1.AckEventsRequest{Seq: 1}); err != nil || s.Acked() != 2 {
		t.Errorf("ack moved backwards: acked %d, err %v", s.Acked(), err)
	}

	st, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
	if sp := st.GetStatus().GetSpool(); sp.GetLastSeq() != 2 || sp.GetAckedSeq() != 2 || st.GetStatus().GetWatchers() != 1 {
		t.Errorf("GetStatus spool = %v watchers = %d", sp, st.GetStatus().GetWatchers())
	}

	h, err := healthpb.NewHealthClient(c.ClientConn()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v", h, err)
	}
}

func TestWatchReplaysThenFollows(t *testing.T) {
	s := kickapitest.NewServer(t)
	c := s.Dial(t)
	ctx := ctx(t)
	ev := func(slug string) *kickmonv1.Event {
		return &kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, Streamer: &kickmonv1.Streamer{BroadcasterUserId: 7, Slug: slug}}
	}
	s.Publish(ev("a"), ev("b"), ev("c"))
	stream, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 2})
	if err != nil {
		t.Fatal(err)
	}
	go s.Publish(ev("d"))
	var seqs []uint64
	for len(seqs) < 3 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		for _, e := range resp.GetEvents() {
			seqs = append(seqs, e.GetSeq())
		}
	}
	if diff := cmp.Diff([]uint64{2, 3, 4}, seqs); diff != "" {
		t.Errorf("seqs (-want +got):\n%s", diff)
	}
}

func TestOutOfRangeAfterDrop(t *testing.T) {
	s := kickapitest.NewServer(t)
	c := s.Dial(t)
	ctx := ctx(t)
	s.Publish(&kickmonv1.Event{}, &kickmonv1.Event{}, &kickmonv1.Event{})
	s.DropBefore(3)
	stream, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err == nil {
		_, err = stream.Recv()
	}
	if !kickapi.IsOutOfRange(err) {
		t.Fatalf("WatchEvents(1) after drop: %v, want OUT_OF_RANGE", err)
	}
	stream, err = c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 5})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("WatchEvents(5) with last seq 3: %v, want FAILED_PRECONDITION", err)
	}
	st, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
	if err != nil || st.GetStatus().GetSpool().GetFirstSeq() != 3 {
		t.Errorf("first_seq = %d, %v; want 3", st.GetStatus().GetSpool().GetFirstSeq(), err)
	}
}

func TestDeniedMutationsAndExplain(t *testing.T) {
	s := kickapitest.NewServer(t)
	c := s.Dial(t)
	ctx := ctx(t)
	s.DenyMutations(true)
	_, err := c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: []string{"x"}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("AddStreamers denied: %v", err)
	}
	if msg := kickapi.Explain(c.Path(), err).Error(); !strings.Contains(msg, "KICKMON_ADMIN_GROUP") {
		t.Errorf("Explain = %q, want a hint about the admin group", msg)
	}
	s.Stop()
	_, err = c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
	if msg := kickapi.Explain(c.Path(), err).Error(); !strings.Contains(msg, "cannot reach kickcollector at "+c.Path()) || !strings.Contains(msg, "systemctl status kickmon-collector") {
		t.Errorf("Explain after stop = %q", msg)
	}
}

func TestReplaceLogAnswersLogChanged(t *testing.T) {
	s := kickapitest.NewServer(t)
	c := s.Dial(t)
	ctx := ctx(t)
	old := s.LogID()
	s.Publish(&kickmonv1.Event{}, &kickmonv1.Event{})
	s.ReplaceLog("log-2")
	stream, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 3, LogId: old})
	if err == nil {
		_, err = stream.Recv()
	}
	if cur, ok := kickapi.LogChanged(err); !ok || cur != "log-2" {
		t.Errorf("WatchEvents of the old log: %v; want LOG_CHANGED naming log-2 (got %q, %v)", err, cur, ok)
	}
	if _, err := c.AckEvents(ctx, &kickmonv1.AckEventsRequest{Seq: 0, LogId: old}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ack for the old log: %v, want FAILED_PRECONDITION", err)
	}
	s.Publish(&kickmonv1.Event{})
	stream, err = c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 1, LogId: "log-2"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetLogId() != "log-2" || resp.GetEvents()[0].GetSeq() != 1 {
		t.Errorf("new log: %v, %v; want seq 1 of log-2", resp, err)
	}
	if _, ok := kickapi.LogChanged(status.Error(codes.FailedPrecondition, "beyond")); ok {
		t.Error("a FAILED_PRECONDITION without ErrorInfo counts as LOG_CHANGED")
	}
}
