package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/collector/internal/spool"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func streamer(id int64, slug string) *kickmonv1.Streamer {
	return &kickmonv1.Streamer{BroadcasterUserId: id, Slug: slug, State: kickmonv1.LiveState_LIVE_STATE_OFFLINE}
}

func TestStreamerRPCs(t *testing.T) {
	e := start(t)
	alice, bob := streamer(1, "alice"), streamer(2, "bob")
	e.be.resolvable(alice, bob)
	c := e.dial(t)
	ctx := testCtx(t)

	add, err := c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: []string{"alice", "nosuch", "bob", "alice"}})
	if err != nil {
		t.Fatalf("AddStreamers: %v", err)
	}
	wantAdd := []*kickmonv1.StreamerResult{
		{Slug: "alice", Streamer: alice},
		{Slug: "nosuch", Error: `unknown slug "nosuch"`},
		{Slug: "bob", Streamer: bob},
		{Slug: "alice", Streamer: alice, Unchanged: true},
	}
	if diff := cmp.Diff(wantAdd, add.GetResults(), protocmp.Transform()); diff != "" {
		t.Errorf("AddStreamers results (-want +got):\n%s", diff)
	}

	list, err := c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
	if err != nil {
		t.Fatalf("ListStreamers: %v", err)
	}
	wantList := &kickmonv1.ListStreamersResponse{Streamers: []*kickmonv1.Streamer{alice, bob}, LastSeq: 2}
	if diff := cmp.Diff(wantList, list, protocmp.Transform()); diff != "" {
		t.Errorf("ListStreamers (-want +got):\n%s", diff)
	}

	gets := []struct {
		name     string
		req      *kickmonv1.GetStreamerRequest
		want     *kickmonv1.Streamer
		wantCode codes.Code
	}{
		{"by slug", &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_Slug{Slug: "alice"}}, alice, codes.OK},
		{"by user id", &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_BroadcasterUserId{BroadcasterUserId: 2}}, bob, codes.OK},
		{"unknown slug", &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_Slug{Slug: "nosuch"}}, nil, codes.NotFound},
		{"empty slug", &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_Slug{}}, nil, codes.InvalidArgument},
		{"no key", &kickmonv1.GetStreamerRequest{}, nil, codes.InvalidArgument},
	}
	for _, tt := range gets {
		t.Run("GetStreamer "+tt.name, func(t *testing.T) {
			resp, err := c.GetStreamer(ctx, tt.req)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, resp.GetStreamer(), protocmp.Transform()); diff != "" {
				t.Errorf("streamer (-want +got):\n%s", diff)
			}
		})
	}

	_, err = c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: []string{"alice", "bob"}, ChannelId: 5})
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("AddStreamers with channel_id and two slugs: code %v, want InvalidArgument", got)
	}

	ref, err := c.RefreshStreamers(ctx, &kickmonv1.RefreshStreamersRequest{Slugs: []string{"alice"}})
	if err != nil {
		t.Fatalf("RefreshStreamers: %v", err)
	}
	if diff := cmp.Diff([]*kickmonv1.StreamerResult{{Slug: "alice", Streamer: alice}}, ref.GetResults(), protocmp.Transform()); diff != "" {
		t.Errorf("RefreshStreamers results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice"}, e.be.refreshedSlugs()); diff != "" {
		t.Errorf("refreshed (-want +got):\n%s", diff)
	}

	rm, err := c.RemoveStreamers(ctx, &kickmonv1.RemoveStreamersRequest{Slugs: []string{"bob", "nosuch"}})
	if err != nil {
		t.Fatalf("RemoveStreamers: %v", err)
	}
	removedBob := streamer(2, "bob")
	removedBob.Removed = true
	wantRm := []*kickmonv1.StreamerResult{{Slug: "bob", Streamer: removedBob}, {Slug: "nosuch", Error: `"nosuch" is not watched`}}
	if diff := cmp.Diff(wantRm, rm.GetResults(), protocmp.Transform()); diff != "" {
		t.Errorf("RemoveStreamers results (-want +got):\n%s", diff)
	}
	snap, err := e.sp.Streamers()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*kickmonv1.Streamer{alice}, snap, protocmp.Transform()); diff != "" {
		t.Errorf("spool snapshot after add and remove (-want +got):\n%s", diff)
	}
}

func TestAckAndStatus(t *testing.T) {
	e := start(t)
	c := e.dial(t)
	ctx := testCtx(t)
	e.publish(t, 3, 10)
	acks := []struct {
		name     string
		seq      uint64
		want     uint64
		wantCode codes.Code
	}{
		{"forward", 2, 2, codes.OK},
		{"backwards is ignored", 1, 2, codes.OK},
		{"beyond the last seq", 4, 0, codes.InvalidArgument},
		{"the last seq", 3, 3, codes.OK},
	}
	for _, tt := range acks {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.AckEvents(ctx, &kickmonv1.AckEventsRequest{Seq: tt.seq})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if got := resp.GetAckedSeq(); got != tt.want {
				t.Errorf("acked = %d, want %d", got, tt.want)
			}
		})
	}

	w, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
	st := resp.GetStatus()
	want := &kickmonv1.CollectorStatus{
		Version:  "test",
		Watchers: 1,
		Spool: &kickmonv1.SpoolStatus{
			Path: e.sp.Path(), SizeBytes: e.sp.Stats().LiveBytes, MaxBytes: spool.DefaultMaxBytes,
			FirstSeq: 1, LastSeq: 3, AckedSeq: 3, LogId: e.sp.LogID(),
		},
	}
	if st.GetSpool().GetAckedAt() == nil {
		t.Error("spool.acked_at not set")
	}
	if diff := cmp.Diff(want, st, protocmp.Transform(), protocmp.IgnoreFields(&kickmonv1.SpoolStatus{}, "acked_at")); diff != "" {
		t.Errorf("GetStatus (-want +got):\n%s", diff)
	}
}

// recvUntil receives from w until it has seen seq last and returns every
// seq received, in order.
func recvUntil(t *testing.T, w grpc.ServerStreamingClient[kickmonv1.WatchEventsResponse], last uint64) []uint64 {
	t.Helper()
	var got []uint64
	for len(got) == 0 || got[len(got)-1] < last {
		resp, err := w.Recv()
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(got), err)
		}
		for _, ev := range resp.GetEvents() {
			got = append(got, ev.GetSeq())
		}
	}
	return got
}

func seqRange(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

func TestWatchReplayThenFollow(t *testing.T) {
	e := start(t, func(c *config) { c.pageSize = 2 })
	c := e.dial(t)
	e.publish(t, 5, 10)
	tests := []struct {
		name string
		from uint64
		want []uint64
	}{
		{"from 0 is the oldest", 0, seqRange(1, 8)},
		{"from the middle", 4, seqRange(4, 8)},
	}
	var streams []grpc.ServerStreamingClient[kickmonv1.WatchEventsResponse]
	for _, tt := range tests {
		w, err := c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: tt.from})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, w)
		if diff := cmp.Diff(tt.want[:len(tt.want)-3], recvUntil(t, w, 5)); diff != "" {
			t.Errorf("%s: replay (-want +got):\n%s", tt.name, diff)
		}
	}
	e.publish(t, 3, 10)
	for i, tt := range tests {
		if diff := cmp.Diff(seqRange(6, 8), recvUntil(t, streams[i], 8)); diff != "" {
			t.Errorf("%s: live (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestWatchReconnectExactlyOnce reconnects a watcher again and again from
// its last seq while events are appended: it sees every event exactly once.
func TestWatchReconnectExactlyOnce(t *testing.T) {
	e := start(t, func(c *config) { c.pageSize = 7 })
	c := e.dial(t)
	const total = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range total / 3 {
			if _, err := e.tryPublish(3, 10); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var got []uint64
	for reconnects := 0; len(got) == 0 || got[len(got)-1] < total; reconnects++ {
		var next uint64 = 1
		if len(got) > 0 {
			next = got[len(got)-1] + 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: next})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // two messages, then drop the stream
			resp, err := w.Recv()
			if err != nil {
				cancel()
				t.Fatalf("reconnect %d from %d: %v", reconnects, next, err)
			}
			for _, ev := range resp.GetEvents() {
				got = append(got, ev.GetSeq())
			}
			if got[len(got)-1] >= total {
				break
			}
		}
		cancel()
	}
	wg.Wait()
	if diff := cmp.Diff(seqRange(1, total), got); diff != "" {
		t.Errorf("seqs across reconnects (-want +got):\n%s", diff)
	}
}

func TestWatchOutOfRange(t *testing.T) {
	e := start(t, func(c *config) { c.spool.KeepAcked = -1 })
	c := e.dial(t)
	e.publish(t, 10, 10)
	if _, err := e.sp.Ack(6); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		from     uint64
		wantCode codes.Code
		wantMsg  string
		want     []uint64
	}{
		{"dropped", 3, codes.OutOfRange, "oldest retained is 7", nil},
		{"just dropped", 6, codes.OutOfRange, "oldest retained is 7", nil},
		{"oldest retained", 7, codes.OK, "", seqRange(7, 10)},
		{"from 0", 0, codes.OK, "", seqRange(7, 10)},
		{"next to come", 11, codes.OK, "", nil},
		{"beyond the log", 12, codes.FailedPrecondition, "beyond the last seq 10", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: tt.from})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCode != codes.OK {
				_, err := w.Recv()
				if status.Code(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Recv = %v, want %v with %q", err, tt.wantCode, tt.wantMsg)
				}
				if got := kickapi.IsOutOfRange(err); got != (tt.wantCode == codes.OutOfRange) {
					t.Errorf("kickapi.IsOutOfRange(%v) = %v", err, got)
				}
				return
			}
			if tt.want == nil {
				return // waits for seq 11: nothing to receive yet
			}
			if diff := cmp.Diff(tt.want, recvUntil(t, w, 10)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

// eventSize is the spool size of one event as publish makes them.
func eventSize(t *testing.T, titleLen int) int64 {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "size.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	e := &env{sp: sp}
	e.publish(t, 1, titleLen)
	return sp.Stats().LiveBytes
}

// TestWatchFallsBehind: a watcher whose next seq is dropped (the spool hit
// MaxBytes) ends with RESOURCE_EXHAUSTED.
func TestWatchFallsBehind(t *testing.T) {
	size := eventSize(t, 10)
	e := start(t, func(c *config) { c.spool.MaxBytes = 3 * size })
	c := e.dial(t)
	e.publish(t, 3, 10)
	w, err := c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seqRange(1, 3), recvUntil(t, w, 3)); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
	e.publish(t, 20, 10) // one transaction: 4-20 dropped unacknowledged
	_, err = w.Recv()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "seq 4 was dropped") {
		t.Fatalf("Recv = %v, want RESOURCE_EXHAUSTED naming seq 4", err)
	}
	if diff := cmp.Diff([]*kickmonv1.SeqRange{{First: 1, Last: 20}}, e.sp.Lost(), protocmp.Transform()); diff != "" {
		t.Errorf("lost (-want +got):\n%s", diff)
	}
}

// TestSlowWatcherDoesNotBlock: a watcher that never reads holds no more than
// a page and a flow-control window. Appends and a fast watcher go on at full
// speed, the heap does not grow with the events the slow one has not read,
// and the slow one still gets everything once it reads.
func TestSlowWatcherDoesNotBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 10 MB of events; skipped with -short")
	}
	const total, titleLen = 10000, 1000 // ~10 MB of events
	e := start(t)
	// A fixed window: gRPC's BDP estimator would otherwise grow the unread
	// stream's buffer in this test process, up to several MB.
	slowConn := e.dial(t, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	fastConn := e.dial(t)
	slow, err := slowConn.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := fastConn.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, waitTimeout, "two watchers", func() bool { return e.srv.Watchers() == 2 })

	var received atomic.Uint64
	fastDone := make(chan []uint64, 1)
	go func() {
		var seqs []uint64
		for len(seqs) == 0 || seqs[len(seqs)-1] < total {
			resp, err := fast.Recv()
			if err != nil {
				break
			}
			for _, ev := range resp.GetEvents() {
				seqs = append(seqs, ev.GetSeq())
			}
			received.Store(seqs[len(seqs)-1])
		}
		fastDone <- seqs
	}()
	// Warm up (lazy initialization in gRPC and protobuf), then measure.
	const batch = 500
	e.publish(t, batch, titleLen)
	testwait.For(t, waitTimeout, "the first batch", func() bool { return received.Load() == batch })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range total/batch - 1 {
		e.publish(t, batch, titleLen)
	}
	if diff := cmp.Diff(seqRange(1, total), <-fastDone); diff != "" {
		t.Fatalf("fast watcher while the slow one stalls (-want +got):\n%s", diff)
	}
	runtime.GC() // twice: the second empties sync.Pool victim caches
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	totalBytes := e.sp.Stats().LiveBytes
	t.Logf("heap grew %d bytes while %d bytes of events were unread by the slow watcher", grown, totalBytes)
	if grown > totalBytes/10 {
		t.Errorf("heap grew %d bytes with %d bytes of events unread: a per-watcher queue?", grown, totalBytes)
	}
	if diff := cmp.Diff(seqRange(1, total), recvUntil(t, slow, total)); diff != "" {
		t.Errorf("slow watcher once it reads (-want +got):\n%s", diff)
	}
}

func TestHealthAndReflection(t *testing.T) {
	e := start(t)
	c := e.dial(t)
	ctx := testCtx(t)
	hc := healthpb.NewHealthClient(c.ClientConn())
	for _, svc := range []string{"", kickmonv1.CollectorService_ServiceDesc.ServiceName} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
	rc, err := reflectionpb.NewServerReflectionClient(c.ClientConn()).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"kickmon.v1.CollectorService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

// TestShutdown: health turns NOT_SERVING, watchers end with UNAVAILABLE and
// the server stops gracefully within the deadline.
func TestShutdown(t *testing.T) {
	e := start(t)
	c := e.dial(t)
	ctx := testCtx(t)
	w, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	hw, err := healthpb.NewHealthClient(c.ClientConn()).Watch(hctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hw.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch = %v, %v; want SERVING", resp.GetStatus(), err)
	}
	testwait.For(t, waitTimeout, "the watcher", func() bool { return e.srv.Watchers() == 1 })

	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(ctx) }()
	if resp, err := hw.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health watch after Shutdown = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	hcancel() // a health watcher keeps the server up until it leaves (or the deadline)
	if _, err := w.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("watcher after Shutdown: %v, want UNAVAILABLE", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v, want a graceful stop", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	e := start(t)
	c := e.dial(t)
	// A health watcher that never leaves keeps GracefulStop waiting.
	hw, err := healthpb.NewHealthClient(c.ClientConn()).Watch(testCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hw.Recv(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want a forced stop after the deadline", err)
	}
	for {
		if _, err := hw.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				t.Errorf("health watch ended cleanly; want it cut by Stop")
			}
			break
		}
	}
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{fmt.Errorf("x: %w", ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("x: %w", spool.ErrAckBeyondLast), codes.InvalidArgument},
		{&spool.OutOfRangeError{From: 1, First: 2}, codes.OutOfRange},
		{spool.ErrClosed, codes.Unavailable},
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{status.Error(codes.FailedPrecondition, "kept"), codes.FailedPrecondition},
		{errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := status.Code(toStatus(tt.err)); got != tt.want {
				t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestLogID(t *testing.T) {
	e := start(t)
	c := e.dial(t)
	e.publish(t, 3, 10)
	id := e.sp.LogID()
	st, err := c.GetStatus(testCtx(t), &kickmonv1.GetStatusRequest{})
	if err != nil || st.GetStatus().GetSpool().GetLogId() != id {
		t.Fatalf("GetStatus spool.log_id = %q, %v; want %q", st.GetStatus().GetSpool().GetLogId(), err, id)
	}
	watch := []struct {
		name    string
		logID   string
		changed bool
	}{
		{"no log id: whatever log is there", "", false},
		{"this log", id, false},
		{"another log", "01OTHERLOG0000000000000000", true},
	}
	for _, tt := range watch {
		t.Run("watch/"+tt.name, func(t *testing.T) {
			w, err := c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: 1, LogId: tt.logID})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := w.Recv()
			if tt.changed {
				cur, ok := kickapi.LogChanged(err)
				if !ok || cur != id || status.Code(err) != codes.FailedPrecondition {
					t.Fatalf("Recv = %v; want FAILED_PRECONDITION LOG_CHANGED naming %s", err, id)
				}
				return
			}
			if err != nil || resp.GetLogId() != id || len(resp.GetEvents()) == 0 {
				t.Fatalf("Recv = %v, %v; want events with log_id %s", resp, err, id)
			}
		})
	}
	ack := []struct {
		name  string
		logID string
		code  codes.Code
	}{
		{"another log is refused and prunes nothing", "01OTHERLOG0000000000000000", codes.FailedPrecondition},
		{"this log", id, codes.OK},
	}
	for _, tt := range ack {
		t.Run("ack/"+tt.name, func(t *testing.T) {
			_, err := c.AckEvents(testCtx(t), &kickmonv1.AckEventsRequest{Seq: 2, LogId: tt.logID})
			if status.Code(err) != tt.code {
				t.Fatalf("AckEvents = %v, want %v", err, tt.code)
			}
			want := uint64(0)
			if tt.code == codes.OK {
				want = 2
			}
			if got := e.sp.Stats().AckedSeq; got != want {
				t.Errorf("acked seq = %d, want %d", got, want)
			}
		})
	}
}
