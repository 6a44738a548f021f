package rpc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestWatchPagesBoundedByBytes: pages are cut by size as well as count, so
// big events never make a page the client cannot receive (gRPC's default
// limit is 4 MiB; 60 events of 100 KB in one page would be 6 MB).
func TestWatchPagesBoundedByBytes(t *testing.T) {
	tests := []struct {
		name      string
		pageBytes int // 0: the default
		n, title  int
	}{
		{"defaults with big events", 0, 60, 100_000},
		{"a small page limit", 8 << 10, 40, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, func(c *config) { c.pageBytes = tt.pageBytes })
			c := e.dial(t)
			e.publish(t, tt.n, tt.title)
			limit := tt.pageBytes
			if limit == 0 {
				limit = DefaultPageBytes
			}
			w, err := c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: 1})
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for len(got) < tt.n {
				resp, err := w.Recv()
				if err != nil {
					t.Fatalf("Recv after %d events: %v", len(got), err)
				}
				if size := proto.Size(resp); size > limit && len(resp.GetEvents()) > 1 {
					t.Errorf("a page of %d events is %d bytes, over the limit %d", len(resp.GetEvents()), size, limit)
				}
				for _, ev := range resp.GetEvents() {
					got = append(got, ev.GetSeq())
				}
			}
			if diff := cmp.Diff(seqRange(1, uint64(tt.n)), got); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFitPage(t *testing.T) {
	ev := func(title int) *kickmonv1.Event {
		return &kickmonv1.Event{Seq: 1, Streamer: &kickmonv1.Streamer{Title: strings.Repeat("x", title)}}
	}
	one := proto.Size(&kickmonv1.WatchEventsResponse{Events: []*kickmonv1.Event{ev(100)}})
	tests := []struct {
		name     string
		events   []*kickmonv1.Event
		maxBytes int
		want     int
	}{
		{"all fit", []*kickmonv1.Event{ev(100), ev(100)}, 2 * one, 2},
		{"exactly one fits", []*kickmonv1.Event{ev(100), ev(100)}, 2*one - 1, 1},
		{"an oversized first event goes alone", []*kickmonv1.Event{ev(1000), ev(1)}, one, 1},
		{"empty", nil, one, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fitPage(tt.events, tt.maxBytes)
			if len(got) != tt.want {
				t.Fatalf("fitPage kept %d events, want %d", len(got), tt.want)
			}
			if size := proto.Size(&kickmonv1.WatchEventsResponse{Events: got}); len(got) > 1 && size > tt.maxBytes {
				t.Errorf("page of %d bytes over %d", size, tt.maxBytes)
			}
		})
	}
}

// TestWatcherCap: past MaxWatchers a new watcher gets RESOURCE_EXHAUSTED
// saying why; when one closes, a new one is welcome again.
func TestWatcherCap(t *testing.T) {
	e := start(t, func(c *config) { c.watchers = 2 })
	c := e.dial(t)
	e.publish(t, 1, 10)
	var cancels []context.CancelFunc
	for range 2 {
		ctx, cancel := context.WithCancel(testCtx(t))
		cancels = append(cancels, cancel)
		w, err := c.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Recv()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "too many event watchers (2 open, the limit is 2)") {
		t.Fatalf("third watcher: %v, want RESOURCE_EXHAUSTED naming the limit", err)
	}
	cancels[0]()
	testwait.For(t, waitTimeout, "one watcher closed", func() bool { return e.srv.Watchers() == 1 })
	w, err = c.WatchEvents(testCtx(t), &kickmonv1.WatchEventsRequest{FromSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Errorf("a watcher after one closed: %v", err)
	}
	cancels[1]()
}

// TestMaxConcurrentStreams: one connection cannot hold more than
// maxConcurrentStreams calls open; other connections are not affected.
func TestMaxConcurrentStreams(t *testing.T) {
	e := start(t)
	greedy, other := e.dial(t), e.dial(t)
	e.publish(t, 1, 10)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var streams []grpc.ServerStreamingClient[kickmonv1.WatchEventsResponse]
	for range maxConcurrentStreams {
		w, err := greedy.WatchEvents(ctx, &kickmonv1.WatchEventsRequest{FromSeq: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, w)
	}
	// The next call on the same connection waits for a free stream; a
	// second is long enough to show it does not go through.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := greedy.GetStatus(short, &kickmonv1.GetStatusRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("call %d on one connection: %v, want it held back (DEADLINE_EXCEEDED)", maxConcurrentStreams+1, err)
	}
	if _, err := other.GetStatus(testCtx(t), &kickmonv1.GetStatusRequest{}); err != nil {
		t.Errorf("another connection: %v", err)
	}
	if len(streams) != maxConcurrentStreams {
		t.Fatalf("%d streams", len(streams))
	}
}
