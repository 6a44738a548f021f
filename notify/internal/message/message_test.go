package message

import (
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestDefaultTemplates(t *testing.T) {
	start := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	e := &kickmonv1.Event{
		Seq:      7,
		Streamer: &kickmonv1.Streamer{Slug: "xqc", Title: "react andy", CategoryName: "Just Chatting", ViewerCount: 50, ThumbnailUrl: "https://img.test/t.webp"},
		Session:  &kickmonv1.Session{StartedAt: timestamppb.New(start), EndedAt: timestamppb.New(start.Add(2*time.Hour + 29*time.Minute + 40*time.Second))},
		KickTime: timestamppb.New(start), PreviousSlug: "xqcow",
	}
	tests := []struct{ kind, want string }{
		{Live, "xqc is live: react andy (Just Chatting) https://kick.com/xqc"},
		{BackLive, "xqc is back live: react andy https://kick.com/xqc"},
		{Offline, "xqc went offline after 2h30m"},
		{Title, "xqc changed the title: react andy"},
		{Category, "xqc is now in Just Chatting"},
		{Renamed, "xqcow is now xqc https://kick.com/xqc"},
	}
	tmpls := DefaultTemplates()
	if n := FromEvent(Live, []string{Live}, e); n.Thumbnail != "https://img.test/t.webp" {
		t.Errorf("FromEvent thumbnail = %q", n.Thumbnail)
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			got, err := Render(tmpls[tt.kind], FromEvent(tt.kind, []string{tt.kind}, e))
			if err != nil || got != tt.want {
				t.Errorf("Render = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"fields and functions", `{{.Slug}} {{.Thumbnail}} {{.Viewers}} {{.StartedAt.Format "15:04"}} {{.Duration}} {{range .Changes}}{{.}}{{end}}`, true},
		{"a missing field", `{{.Streamer}}`, false},
		{"bad syntax", `{{.Slug`, false},
		{"empty output", `{{if false}}x{{end}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Live, tt.text)
			if (err == nil) != tt.ok {
				t.Errorf("Parse(%q) err = %v, want ok=%v", tt.text, err, tt.ok)
			}
		})
	}
}
