package ui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/viewer/internal/feed"
	"github.com/kickmon/kickmon/viewer/internal/viewtest"
)

func TestDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{59 * time.Second, "59s"},
		{61 * time.Minute, "1h01m"},
		{50 * time.Hour, "2d02h"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Dur(tt.d); got != tt.want {
				t.Errorf("Dur(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{950, "950"}, {9999, "9999"}, {12_345, "12.3k"}, {1_250_000, "1.2M"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Count(tt.n); got != tt.want {
				t.Errorf("Count(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestColumnWidthsFit(t *testing.T) {
	for _, w := range []int{60, 80, 100, 200} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			cols := columnWidths(w)
			total := numCols - 1
			for _, c := range cols {
				total += c
			}
			if total != w {
				t.Errorf("columns %v take %d cells, want %d", cols, total, w)
			}
			if cols[colTitle] < cols[colCategory] {
				t.Errorf("title %d narrower than category %d", cols[colTitle], cols[colCategory])
			}
		})
	}
}

func TestArrangeFilter(t *testing.T) {
	rows := []feed.Row{
		{Streamer: viewtest.Streamer(1, "Alpha", "live", 1, "Speedrun", "Games")},
		{Streamer: viewtest.Streamer(2, "beta", "offline", 0, "", "Just Chatting")},
		{Streamer: viewtest.Streamer(3, "gamma", "unknown", 0, "", "")},
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"Alpha", "gamma", "beta"}},
		{"alpha", []string{"Alpha"}},
		{"CHAT", []string{"beta"}},
		{"run", []string{"Alpha"}},
		{"zzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			var got []string
			for _, r := range Arrange(append([]feed.Row(nil), rows...), tt.filter, ByStatus) {
				got = append(got, r.Streamer.GetSlug())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestLinesCutsAtWidth(t *testing.T) {
	screen := tcell.NewSimulationScreen("UTF-8")
	if err := screen.Init(); err != nil {
		t.Fatal(err)
	}
	screen.SetSize(10, 2)
	l := NewLines(false)
	l.SetRect(0, 0, 10, 2)
	l.SetLines([]Line{{{Text: "héllo [wörld] long", Style: tcell.StyleDefault}}, {{Text: "ok", Style: tcell.StyleDefault}}}, false)
	l.Draw(screen)
	screen.Show()
	cells, w, _ := screen.GetContents()
	var got []string
	for y := range 2 {
		var b strings.Builder
		for x := range w {
			b.WriteString(string(cells[y*w+x].Runes))
		}
		got = append(got, strings.TrimRight(b.String(), " "))
	}
	if diff := cmp.Diff([]string{"héllo [wö…", "ok"}, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
}

// world10k is a feed with 10k streamers, a third of them live.
func world10k(b *testing.B) *feed.Feed {
	f := feed.New(nil, feed.Options{})
	for i := range 10_000 {
		state := []string{"live", "offline", "unknown"}[i%3]
		e := viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED,
			viewtest.Streamer(int64(i), fmt.Sprintf("streamer%05d", i), state, int64(i*37%5000), fmt.Sprintf("title of stream %d", i), "Just Chatting"))
		e.Seq = uint64(i + 1)
		f.Apply(e)
	}
	return f
}

// BenchmarkFrame is one redraw of a 10k-streamer dashboard after a burst
// of events: apply 100 events, snapshot, filter+sort, format the panes and
// draw the table and log on a 200x60 screen — what the render goroutine
// and the event loop do per frame.
func BenchmarkFrame(b *testing.B) {
	for _, key := range []SortKey{ByStatus, ByLastChange} {
		b.Run(key.String(), func(b *testing.B) {
			f := world10k(b)
			screen := tcell.NewSimulationScreen("UTF-8")
			if err := screen.Init(); err != nil {
				b.Fatal(err)
			}
			screen.SetSize(200, 60)
			theme := Theme{}
			table := NewStreamerTable(theme)
			table.SetRect(0, 1, 200, 45)
			logPane := NewLines(true)
			logPane.SetRect(0, 46, 200, 12)
			events := make([]*kickmonv1.Event, 100)
			seq := uint64(10_000)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				for i := range events {
					seq++
					id := int64(seq * 7919 % 10_000)
					events[i] = viewtest.Started(viewtest.Streamer(id, fmt.Sprintf("streamer%05d", id), "offline", int64(seq%900), "t", "c"))
					events[i].Seq = seq
				}
				f.Apply(events...)
				s := f.Snapshot()
				rows := Arrange(s.Rows, "", key)
				_ = Header(theme, s, View{Sort: key, Shown: len(rows)}, now)
				_ = Footer(theme, s, now)
				logPane.SetLines(LogLines(theme, s.Log[max(0, len(s.Log)-100):], 200), false)
				table.Set(rows, now, false)
				table.Draw(screen)
				logPane.Draw(screen)
				screen.Show()
			}
		})
	}
}

// BenchmarkArrangeFiltered is a filter over 10k rows (typing "/" then Enter).
func BenchmarkArrangeFiltered(b *testing.B) {
	s := world10k(b).Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		rows := Arrange(append([]feed.Row(nil), s.Rows...), "stream 99", ByName)
		if len(rows) == 0 {
			b.Fatal("no rows")
		}
	}
}

func TestBanner(t *testing.T) {
	now := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	text := func(ls []Line) string {
		var b strings.Builder
		for _, l := range ls {
			for _, seg := range l {
				b.WriteString(seg.Text)
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	tests := []struct {
		name string
		snap feed.Snapshot
		want string // "" means no banner
	}{
		{"connected", feed.Snapshot{State: feed.Connected}, ""},
		{"never loaded", feed.Snapshot{State: feed.Disconnected, Since: now.Add(-5 * time.Second), Attempts: 2, Err: errors.New("no such file")}, "no data yet"},
		{"after data", feed.Snapshot{State: feed.Disconnected, Since: now, Rows: []feed.Row{{}}, Err: errors.New("x")}, "showing the last data (dimmed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := text(Banner(Theme{}, tt.snap, now))
			if tt.want == "" {
				if got != "" {
					t.Errorf("banner %q while connected", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) || !strings.Contains(got, "DISCONNECTED") {
				t.Errorf("banner %q, want it to say %q", got, tt.want)
			}
		})
	}
}

// TestLogColumnsStayApart draws every kind of log line for a long slug at
// several widths: the kind never runs into the slug (COVERAGE_CHANGEDlazy-…
// on a 150-column terminal), and narrow logs shorten kinds instead.
func TestLogColumnsStayApart(t *testing.T) {
	const slug = "lazy-badger6797"
	var entries []feed.Entry
	var kinds []kickmonv1.EventKind
	for k := range kickmonv1.EventKind_name {
		if kind := kickmonv1.EventKind(k); kind != kickmonv1.EventKind_EVENT_KIND_UNSPECIFIED {
			kinds = append(kinds, kind)
		}
	}
	slices.Sort(kinds)
	for i, k := range kinds {
		ev := viewtest.Event(k, viewtest.Streamer(1, slug, "live", 1, "a title", "IRL"))
		ev.Seq = uint64(i + 1)
		ev.Coverage = &kickmonv1.Coverage{Source: kickmonv1.Source_SOURCE_CENTRIFUGO, Blind: true, Reason: "no channel id"}
		entries = append(entries, feed.Entry{At: time.Date(2026, 12, 6, 23, 0, 0, 0, time.Local), Event: ev, Detail: "title \"x\""})
	}
	for _, width := range []int{32, 40, 60, 79, 80, 100, 150, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			screen := tcell.NewSimulationScreen("UTF-8")
			if err := screen.Init(); err != nil {
				t.Fatal(err)
			}
			defer screen.Fini()
			screen.SetSize(width, len(entries))
			pane := NewLines(false)
			pane.SetRect(0, 0, width, len(entries))
			pane.SetLines(LogLines(Theme{}, entries, width), false)
			pane.Draw(screen)
			screen.Show()
			cells, _, _ := screen.GetContents()
			for row, k := range kinds {
				var b strings.Builder
				for _, c := range cells[row*width : (row+1)*width] {
					b.WriteString(string(c.Runes))
				}
				text := b.String()
				full := strings.TrimPrefix(k.String(), "EVENT_KIND_")
				want := full
				if width < wideLog {
					want = shortKinds[k]
				}
				// time, one space, the kind, a gap of at least two, the slug.
				rest := []rune(text)[len("23:00:00 "):]
				label, after, _ := strings.Cut(string(rest), " ")
				if label != want {
					t.Errorf("row %q: kind %q, want %q", text, label, want)
				}
				if !strings.HasPrefix(after, " ") || !strings.HasPrefix(strings.TrimLeft(after, " "), "lazy-badger") {
					t.Errorf("row %q: the kind is not followed by a gap and the slug", text)
				}
				if strings.Contains(text, full+slug) || strings.Contains(text, want+slug) {
					t.Errorf("row %q: kind and slug collide", text)
				}
			}
		})
	}
}

func TestKindCellIsAlwaysFollowedByAGap(t *testing.T) {
	for _, width := range []int{0, 10, 79, 80, 300} {
		for k := range kickmonv1.EventKind_name {
			cell := kindCell(kickmonv1.EventKind(k), width)
			if !strings.HasSuffix(cell, "  ") {
				t.Errorf("width %d, %v: cell %q has no gap", width, kickmonv1.EventKind(k), cell)
			}
		}
		// A kind the viewer does not know (a newer collector) is cut, not spilled.
		if cell := kindCell(kickmonv1.EventKind(99), width); !strings.HasSuffix(cell, "  ") {
			t.Errorf("width %d: unknown kind cell %q has no gap", width, cell)
		}
	}
}
