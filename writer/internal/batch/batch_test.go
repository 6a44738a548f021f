package batch

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func ev(seq uint64, uid int64) *kickmonv1.Event {
	return &kickmonv1.Event{
		Seq:        seq,
		Kind:       kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED,
		Streamer:   &kickmonv1.Streamer{BroadcasterUserId: uid},
		ObservedAt: timestamppb.New(t0.Add(time.Duration(seq) * time.Second)),
	}
}

func seqs(evs []*kickmonv1.Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.GetSeq())
	}
	return out
}

func TestBatcher(t *testing.T) {
	type step struct {
		at    time.Duration // since t0
		add   []uint64      // seqs to add
		skip  uint64        // SkipTo, if not 0
		ready bool          // Ready after the step
		take  []uint64      // if non-nil, Take and expect these seqs
		taken uint64        // expected SkipTo of the Take
	}
	tests := []struct {
		name            string
		size, max       int
		interval        time.Duration
		steps           []step
		wantLen, wantMx int
	}{
		{
			name: "nothing pending is never ready", size: 10, max: 100, interval: 100 * time.Millisecond,
			steps: []step{{at: time.Hour, ready: false}},
		},
		{
			name: "size trigger", size: 3, max: 100, interval: time.Second,
			steps: []step{
				{add: []uint64{1, 2}, ready: false},
				{add: []uint64{3}, ready: true, take: []uint64{1, 2, 3}},
				{ready: false},
			},
		},
		{
			name: "interval trigger counts from the oldest event", size: 10, max: 100, interval: 100 * time.Millisecond,
			steps: []step{
				{at: 0, add: []uint64{1}},
				{at: 60 * time.Millisecond, add: []uint64{2}, ready: false},
				{at: 99 * time.Millisecond, ready: false},
				{at: 100 * time.Millisecond, ready: true, take: []uint64{1, 2}},
			},
		},
		{
			name: "group commit takes everything pending up to max", size: 2, max: 5, interval: time.Second,
			steps: []step{
				{add: []uint64{1, 2, 3, 4, 5, 6, 7}, ready: true, take: []uint64{1, 2, 3, 4, 5}},
				// The rest is overdue at once, though below... above size anyway:
				{ready: true, take: []uint64{6, 7}},
				{ready: false},
			},
		},
		{
			name: "a remainder below size flushes without waiting", size: 5, max: 5, interval: time.Second,
			steps: []step{
				{add: []uint64{1, 2, 3, 4, 5, 6}, take: []uint64{1, 2, 3, 4, 5}, ready: true},
				{at: time.Millisecond, ready: true, take: []uint64{6}},
			},
		},
		{
			name: "skip is ready at once and travels with the last events", size: 10, max: 2, interval: time.Second,
			steps: []step{
				{add: []uint64{1, 2, 3}, skip: 9, ready: true, take: []uint64{1, 2}},
				{ready: true, take: []uint64{3}, taken: 9},
				{add: []uint64{10}, ready: false},
			},
			wantLen: 1,
		},
		{
			name: "skip alone", size: 10, max: 100, interval: time.Second,
			steps: []step{{skip: 4, ready: true, take: []uint64{}, taken: 4}, {ready: false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.size, tt.max, tt.interval)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				for _, q := range s.add {
					b.Add(now, ev(q, 1))
				}
				if s.skip != 0 {
					b.SkipTo(now, s.skip)
				}
				if got := b.Ready(now); got != s.ready {
					t.Fatalf("step %d: Ready = %v, want %v", i, got, s.ready)
				}
				if s.take != nil {
					p := b.Take(now)
					if d := cmp.Diff(s.take, seqs(p.Events)); d != "" {
						t.Fatalf("step %d: Take (-want +got):\n%s", i, d)
					}
					if p.SkipTo != s.taken {
						t.Fatalf("step %d: SkipTo = %d, want %d", i, p.SkipTo, s.taken)
					}
				}
			}
			if b.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", b.Len(), tt.wantLen)
			}
		})
	}
}

func TestBatcherFull(t *testing.T) {
	b := New(10, 5, time.Second)
	for i := range 19 {
		b.Add(t0, ev(uint64(i+1), 1))
	}
	if b.Full() {
		t.Fatal("Full with 19 pending, max 5")
	}
	b.Add(t0, ev(20, 1))
	if !b.Full() {
		t.Fatal("not Full with 20 pending, max 5")
	}
}

func TestPendingLast(t *testing.T) {
	tests := []struct {
		name string
		p    Pending
		want uint64
	}{
		{"empty", Pending{}, 0},
		{"events", Pending{Events: []*kickmonv1.Event{ev(3, 1), ev(4, 1)}}, 4},
		{"skip beyond events", Pending{Events: []*kickmonv1.Event{ev(3, 1)}, SkipTo: 8}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Last(); got != tt.want {
				t.Errorf("Last = %d, want %d", got, tt.want)
			}
		})
	}
}
