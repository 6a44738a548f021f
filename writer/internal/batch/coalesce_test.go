package batch

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func session(seq uint64, uid int64, id string) *kickmonv1.Event {
	e := ev(seq, uid)
	e.Kind = kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED
	e.Session = &kickmonv1.Session{SessionId: id, StartedAt: timestamppb.New(t0.Add(time.Duration(seq)))}
	return e
}

func coverage(seq uint64, uid int64, src kickmonv1.Source, blind bool) *kickmonv1.Event {
	e := ev(seq, uid)
	e.Kind = kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED
	e.Coverage = &kickmonv1.Coverage{Source: src, Blind: blind, Reason: "socket down"}
	return e
}

// summary is a comparable digest of Rows.
type summary struct {
	Events    []uint64
	Streamers [][2]int64 // user id, seq
	Sessions  []string   // id@seq
	Closes    []string
	Gaps      []string
}

func summarize(r Rows) summary {
	s := summary{Events: seqs(r.Events)}
	for _, e := range r.Streamers {
		s.Streamers = append(s.Streamers, [2]int64{e.GetStreamer().GetBroadcasterUserId(), int64(e.GetSeq())})
	}
	for _, x := range r.Sessions {
		s.Sessions = append(s.Sessions, x.Session.GetSessionId()+"@"+itoa(x.Seq))
	}
	for _, c := range r.Closes {
		s.Closes = append(s.Closes, itoa(uint64(c.UserID))+"/"+c.Source.String()+"@"+itoa(c.CloseSeq))
	}
	for _, g := range r.Gaps {
		s.Gaps = append(s.Gaps, itoa(uint64(g.UserID))+"/"+g.Source.String()+":"+itoa(g.OpenSeq)+"-"+itoa(g.CloseSeq))
	}
	return s
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestCoalesce(t *testing.T) {
	const pusher = kickmonv1.Source_SOURCE_PUSHER
	const poll = kickmonv1.Source_SOURCE_POLL
	tests := []struct {
		name   string
		events []*kickmonv1.Event
		want   summary
	}{
		{
			name:   "empty",
			events: nil,
			want:   summary{Events: []uint64{}},
		},
		{
			name:   "last write wins per streamer, whatever the arrival order",
			events: []*kickmonv1.Event{ev(3, 7), ev(1, 7), ev(2, 9), ev(5, 9), ev(4, 7)},
			want:   summary{Events: []uint64{1, 2, 3, 4, 5}, Streamers: [][2]int64{{7, 4}, {9, 5}}},
		},
		{
			name:   "duplicate seqs are written once",
			events: []*kickmonv1.Event{ev(1, 7), ev(1, 7), ev(2, 7)},
			want:   summary{Events: []uint64{1, 2}, Streamers: [][2]int64{{7, 2}}},
		},
		{
			name:   "sessions by session id, newest wins",
			events: []*kickmonv1.Event{session(1, 7, "a"), session(2, 8, "b"), session(3, 7, "a")},
			want:   summary{Events: []uint64{1, 2, 3}, Streamers: [][2]int64{{7, 3}, {8, 2}}, Sessions: []string{"a@3", "b@2"}},
		},
		{
			name:   "blind opens a gap, seeing again closes it within the run",
			events: []*kickmonv1.Event{coverage(1, 7, pusher, true), coverage(2, 7, pusher, false), coverage(3, 7, pusher, true)},
			want: summary{Events: []uint64{1, 2, 3}, Streamers: [][2]int64{{7, 3}},
				Gaps: []string{"7/SOURCE_PUSHER:1-2", "7/SOURCE_PUSHER:3-0"}},
		},
		{
			name:   "seeing first closes the gap opened earlier; sources are separate",
			events: []*kickmonv1.Event{coverage(1, 7, pusher, false), coverage(2, 7, poll, true), coverage(3, 7, pusher, false)},
			want: summary{Events: []uint64{1, 2, 3}, Streamers: [][2]int64{{7, 3}},
				Closes: []string{"7/SOURCE_PUSHER@1"}, Gaps: []string{"7/SOURCE_POLL:2-0"}},
		},
		{
			name:   "blind twice keeps the first gap",
			events: []*kickmonv1.Event{coverage(1, 7, pusher, true), coverage(2, 7, pusher, true)},
			want:   summary{Events: []uint64{1, 2}, Streamers: [][2]int64{{7, 2}}, Gaps: []string{"7/SOURCE_PUSHER:1-0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, summarize(Coalesce(tt.events))); d != "" {
				t.Errorf("Coalesce (-want +got):\n%s", d)
			}
		})
	}
}

func TestSessionOf(t *testing.T) {
	own := &kickmonv1.Session{SessionId: "own"}
	cur := &kickmonv1.Session{SessionId: "current"}
	tests := []struct {
		name string
		e    *kickmonv1.Event
		want string
	}{
		{"event's own session", &kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, Session: own, Streamer: &kickmonv1.Streamer{Session: cur}}, "own"},
		{"stream event falls back to the streamer's", &kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED, Streamer: &kickmonv1.Streamer{Session: cur}}, "current"},
		{"other kinds carry none", &kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED, Streamer: &kickmonv1.Streamer{Session: cur}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionOf(tt.e).GetSessionId(); got != tt.want {
				t.Errorf("SessionOf = %q, want %q", got, tt.want)
			}
		})
	}
}
