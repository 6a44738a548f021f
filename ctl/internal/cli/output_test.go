package cli

import (
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{45 * time.Second, "45s"},
		{12*time.Minute + 5*time.Second, "12m5s"},
		{2*time.Hour + 13*time.Minute + 59*time.Second, "2h13m"},
		{76 * time.Hour, "3d4h"},
		{-90 * time.Second, "-1m30s"},
	}
	for _, tt := range tests {
		if got := duration(tt.d); got != tt.want {
			t.Errorf("duration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestCoverage(t *testing.T) {
	see := func(s kickmonv1.Source) *kickmonv1.Coverage { return &kickmonv1.Coverage{Source: s} }
	blind := func(s kickmonv1.Source) *kickmonv1.Coverage { return &kickmonv1.Coverage{Source: s, Blind: true} }
	webhook := kickmonv1.Source_SOURCE_WEBHOOK
	tests := []struct {
		name string
		covs []*kickmonv1.Coverage
		want string
	}{
		{"none reported", nil, "-"},
		{"all seeing", []*kickmonv1.Coverage{see(poll), see(pusher), see(webhook)}, "poll,pusher,webhook"},
		{"pusher blind", []*kickmonv1.Coverage{see(poll), blind(pusher)}, "poll (pusher blind)"},
		{"all blind", []*kickmonv1.Coverage{blind(poll), blind(pusher)}, "none (poll,pusher blind)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := coverage(tt.covs); got != tt.want {
				t.Errorf("coverage = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCell(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, "-"},
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"tab\there\nnewline", 0, "tab here newline"},
		{"ünïcödé títle", 5, "ünïc…"},
	}
	for _, tt := range tests {
		if got := cell(tt.in, tt.max); got != tt.want {
			t.Errorf("cell(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestBytesize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"}, {3 << 20, "3.0 MiB"}, {1 << 30, "1.0 GiB"}, {5 << 40, "5.0 TiB"},
	}
	for _, tt := range tests {
		if got := bytesize(tt.n); got != tt.want {
			t.Errorf("bytesize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestWriterLag(t *testing.T) {
	e := testEnv("", nil, nil)
	tests := []struct {
		name string
		sp   *kickmonv1.SpoolStatus
		want string
	}{
		{"never acked", &kickmonv1.SpoolStatus{LastSeq: 7}, "7 events, last ack never"},
		{"behind", &kickmonv1.SpoolStatus{LastSeq: 42, AckedSeq: 40, AckedAt: at(3 * time.Second)}, "2 events, last ack 3s ago"},
		{"caught up", &kickmonv1.SpoolStatus{LastSeq: 42, AckedSeq: 42, AckedAt: at(90 * time.Second)}, "0 events, last ack 1m30s ago"},
		{"one", &kickmonv1.SpoolStatus{LastSeq: 1}, "1 event, last ack never"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.writerLag(tt.sp); got != tt.want {
				t.Errorf("writerLag = %q, want %q", got, tt.want)
			}
		})
	}
}
