package app

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gdamore/tcell/v2"
	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/viewer/internal/viewtest"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// world is four streamers whose orders differ under every sort key.
func world(t *testing.T) *kickapitest.Server {
	srv := kickapitest.NewServer(t)
	now := time.Now()
	ago := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }

	alice := viewtest.Streamer(1, "alice", "offline", 0, "gone fishing", "IRL")
	alice.Session = &kickmonv1.Session{EndedAt: ago(3 * time.Hour)}
	bob := viewtest.Streamer(2, "bob", "live", 500, "ranked grind", "Chess")
	bob.LiveSince = ago(time.Minute)
	carol := viewtest.Streamer(3, "carol", "live", 50, "chatting [music]", "Just Chatting")
	carol.LiveSince = ago(2 * time.Hour)
	dave := viewtest.Streamer(4, "dave", "unknown", 0, "", "")
	dave.AddedAt = ago(10 * time.Minute)
	srv.SetStreamers(alice, bob, carol, dave)
	return srv
}

var statusOrder = []string{"bob", "carol", "dave", "alice"}

func TestTableRowsAndColours(t *testing.T) {
	for _, noColor := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO_COLOR=%v", noColor), func(t *testing.T) {
			hs := start(t, world(t), 100, 30, noColor)
			// The list arrives before the event stream is open: wait for both.
			lines := hs.waitScreen("four rows, connected", func(l []string) bool {
				_, y := find(l, "● connected")
				return len(tableSlugs(l)) == 4 && y >= 0
			})

			if diff := cmp.Diff(statusOrder, tableSlugs(lines)); diff != "" {
				t.Errorf("rows -want +got:\n%s", diff)
			}
			for _, want := range []string{"4 streamers, 2 live", "● connected", "sort: status", "SLUG", "STATUS", "TITLE", "CATEGORY", "VIEWERS", "LIVE FOR", "CONFIRMED", "EVENTS"} {
				if _, y := find(lines, want); y < 0 {
					t.Errorf("screen lacks %q:\n%s", want, strings.Join(lines, "\n"))
				}
			}

			tests := []struct {
				slug, status string
				fields       []string
				colour       tcell.Color
			}{
				{"bob", "LIVE", []string{"ranked grind", "Chess", "500", "1m", "5s ago"}, tcell.ColorGreen},
				{"carol", "LIVE", []string{"chatting [music]", "Just Chatting", "50", "2h00m"}, tcell.ColorGreen},
				{"dave", "UNKNOWN", nil, tcell.ColorYellow},
				{"alice", "OFFLINE", []string{"gone fishing", "IRL"}, tcell.ColorRed},
			}
			for _, tt := range tests {
				t.Run(tt.slug, func(t *testing.T) {
					_, y := find(lines, tt.slug+" ")
					if y < 0 {
						t.Fatalf("no row for %s", tt.slug)
					}
					row := lines[y]
					x := strings.Index(row, tt.status)
					if x < 0 {
						t.Fatalf("row %q lacks status %s", row, tt.status)
					}
					for _, f := range tt.fields {
						if !strings.Contains(row, f) {
							t.Errorf("row %q lacks %q", row, f)
						}
					}
					fg, _, _ := hs.styleAt(x, y).Decompose()
					want := tt.colour
					if noColor {
						want = tcell.ColorDefault
					}
					if fg != want {
						t.Errorf("status %s colour = %v, want %v", tt.status, fg, want)
					}
				})
			}

			if noColor {
				for i, st := range hs.styles() {
					if fg, bg, _ := st.Decompose(); fg != tcell.ColorDefault || bg != tcell.ColorDefault {
						t.Fatalf("cell %d has colours %v on %v with NO_COLOR", i, fg, bg)
					}
				}
			}
		})
	}
}

func TestSortCycles(t *testing.T) {
	hs := start(t, world(t), 100, 30, false)
	hs.waitScreen("four rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })
	steps := []struct {
		sort string
		want []string
	}{
		{"name", []string{"alice", "bob", "carol", "dave"}},
		{"viewers", []string{"bob", "carol", "alice", "dave"}},
		{"last change", []string{"bob", "dave", "carol", "alice"}},
		{"status", statusOrder},
	}
	for _, st := range steps {
		t.Run(st.sort, func(t *testing.T) {
			hs.key('s')
			hs.waitText("sort: " + st.sort)
			hs.waitScreen("order by "+st.sort, func(l []string) bool { return cmp.Equal(st.want, tableSlugs(l)) })
		})
	}
}

func TestFilter(t *testing.T) {
	hs := start(t, world(t), 100, 30, false)
	hs.waitScreen("four rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })

	hs.key('/')
	hs.waitText("filter:")
	hs.typeText("CHAT")
	// Typing does not filter yet; Enter applies.
	hs.waitText("filter: CHAT")
	if got := tableSlugs(hs.lines()); len(got) != 4 {
		t.Errorf("rows before Enter = %v, want all four", got)
	}
	hs.special(tcell.KeyEnter)
	lines := hs.waitScreen("filtered rows", func(l []string) bool { return cmp.Equal([]string{"carol"}, tableSlugs(l)) })
	if _, y := find(lines, `filter: "CHAT" (1)`); y < 0 {
		t.Errorf("header does not show the filter:\n%s", strings.Join(lines, "\n"))
	}
	// Keys work on the table again (not typed into the field).
	hs.key('s')
	hs.waitText("sort: name")

	tests := []struct {
		name string
		keys func()
	}{
		{"Esc in the field clears", func() { hs.key('/'); hs.waitText("filter: fish"); hs.special(tcell.KeyEscape) }},
		{"Esc on the table clears", func() { hs.special(tcell.KeyEscape) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs.key('/')
			hs.waitText("filter: ")
			hs.special(tcell.KeyCtrlU) // the field opens with the current filter
			hs.typeText("fish")
			hs.special(tcell.KeyEnter)
			hs.waitScreen("filtered to alice", func(l []string) bool { return cmp.Equal([]string{"alice"}, tableSlugs(l)) })
			hs.key('/')
			hs.special(tcell.KeyEnter) // reopen and re-apply: unchanged
			hs.waitScreen("still alice", func(l []string) bool { return cmp.Equal([]string{"alice"}, tableSlugs(l)) })
			tt.keys()
			hs.waitScreen("all rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })
		})
	}
}

func TestHelp(t *testing.T) {
	hs := start(t, world(t), 60, 24, false)
	hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })
	for _, close := range []struct {
		name string
		key  func()
	}{
		{"?", func() { hs.key('?') }},
		{"Esc", func() { hs.special(tcell.KeyEscape) }},
	} {
		t.Run(close.name, func(t *testing.T) {
			hs.key('?')
			lines := hs.waitText("kickview keys")
			if x, _ := find(lines, "kickview keys"); x != 1 {
				t.Errorf("help box not inside a 60-column screen: title at column %d", x)
			}
			for _, want := range []string{"refresh the selected streamer", "refresh every watched streamer", "cycle the sort", "filter by slug"} {
				if _, y := find(lines, want); y < 0 {
					t.Errorf("help lacks %q:\n%s", want, strings.Join(lines, "\n"))
				}
			}
			hs.key('s') // swallowed while help is open
			close.key()
			lines = hs.waitGone("kickview keys")
			if got := tableSlugs(lines); !cmp.Equal(statusOrder, got) {
				t.Errorf("a key reached the table while help was open:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	srv := world(t)
	hs := start(t, srv, 100, 30, false)
	hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })

	hs.key('r') // the selection starts on the first row: bob
	viewtest.Wait(t, "refresh of bob", func() bool { return cmp.Equal([]string{"bob"}, srv.Refreshed()) }, func() string { return fmt.Sprint(srv.Refreshed()) })
	hs.waitText("refresh requested for bob")

	hs.special(tcell.KeyDown)
	hs.special(tcell.KeyDown)
	hs.key('r')
	viewtest.Wait(t, "refresh of dave", func() bool { return cmp.Equal([]string{"bob", "dave"}, srv.Refreshed()) }, func() string { return fmt.Sprint(srv.Refreshed()) })

	hs.key('R')
	want := []string{"bob", "dave", "alice", "bob", "carol", "dave"}
	viewtest.Wait(t, "refresh of all", func() bool { return cmp.Equal(want, srv.Refreshed()) }, func() string { return fmt.Sprint(srv.Refreshed()) })
	hs.waitText("refresh requested for all streamers (4 checked)")

	srv.DenyMutations(true)
	hs.key('R')
	hs.waitText("permission denied")
}

func TestEventsAppearInLog(t *testing.T) {
	srv := world(t)
	hs := start(t, srv, 100, 30, false)
	hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })

	alice := viewtest.Streamer(1, "alice", "offline", 0, "back again", "IRL")
	srv.Publish(viewtest.Started(alice))
	lines := hs.waitText("STREAM_STARTED")
	_, y := find(lines, "STREAM_STARTED")
	if !strings.Contains(lines[y], "alice") || !strings.Contains(lines[y], `"back again"`) {
		t.Errorf("log line = %q", lines[y])
	}
	lines = hs.waitText("4 streamers, 3 live")
	if fg, _, _ := hs.styleAt(find(lines, "STREAM_STARTED")).Decompose(); fg != tcell.ColorGreen {
		t.Errorf("STREAM_STARTED colour = %v, want green", fg)
	}
}

func TestFooterShowsSourcesAndBudget(t *testing.T) {
	srv := world(t)
	srv.SetStatus(&kickmonv1.CollectorStatus{
		Sources: []*kickmonv1.SourceStatus{
			{Source: kickmonv1.Source_SOURCE_POLL, Health: kickmonv1.Health_HEALTH_OK},
			{Source: kickmonv1.Source_SOURCE_PUSHER, Health: kickmonv1.Health_HEALTH_DEGRADED},
			{Source: kickmonv1.Source_SOURCE_WEBHOOK, Health: kickmonv1.Health_HEALTH_DISABLED},
		},
		Sockets: []*kickmonv1.SocketStatus{{State: "connected"}, {State: "backoff"}},
		Budget:  &kickmonv1.BudgetStatus{RequestsPerMinute: 600, UsedLastMinute: 120, RateLimitedTotal: 2, BackoffUntil: timestamppb.New(time.Now().Add(time.Minute))},
	})
	hs := start(t, srv, 100, 30, false)
	lines := hs.waitText("api 120/600/min")
	footer := lines[len(lines)-1]
	for _, want := range []string{"poll ok", "pusher degraded 1/2 up", "webhook off", "RATE-LIMITED"} {
		if !strings.Contains(footer, want) {
			t.Errorf("footer %q lacks %q", footer, want)
		}
	}
	x, y := find(lines, "degraded")
	if fg, _, _ := hs.styleAt(x, y).Decompose(); fg != tcell.ColorYellow {
		t.Errorf("degraded colour = %v, want yellow", fg)
	}
}

func TestDisconnectBannerAndRecovery(t *testing.T) {
	srv := world(t)
	hs := start(t, srv, 100, 30, false)
	hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })

	srv.Stop()
	lines := hs.waitText("DISCONNECTED for")
	for _, want := range []string{"cannot reach kickcollector at " + srv.Path(), "✕ DISCONNECTED"} {
		if _, y := find(lines, want); y < 0 {
			t.Errorf("screen lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if got := tableSlugs(lines); !cmp.Equal(statusOrder, got) {
		t.Errorf("rows while disconnected = %v, want the last data", got)
	}
	x, y := find(lines, "alice ")
	if _, _, attr := hs.styleAt(x, y).Decompose(); attr&tcell.AttrDim == 0 {
		t.Errorf("last data not dimmed: attrs %v", attr)
	}

	alice := viewtest.Streamer(1, "alice", "offline", 0, "while you were away", "IRL")
	srv.Publish(viewtest.Started(alice), viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, viewtest.Streamer(5, "erin", "unknown", 0, "", "")))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	hs.waitText("erin")
	lines = hs.waitGone("DISCONNECTED")
	for _, text := range []string{"STREAM_STARTED", "STREAMER_ADDED", "reconnected; resumed events from seq 1"} {
		if n := strings.Count(strings.Join(lines, "\n"), text); n != 1 {
			t.Errorf("%q appears %d times, want once:\n%s", text, n, strings.Join(lines, "\n"))
		}
	}
	x, y = find(lines, "alice ")
	if _, _, attr := hs.styleAt(x, y).Decompose(); attr&tcell.AttrDim != 0 {
		t.Errorf("data still dimmed after recovery")
	}
	if _, y := find(lines, "5 streamers, 3 live"); y < 0 {
		t.Errorf("header not updated:\n%s", strings.Join(lines, "\n"))
	}
}

func TestResize(t *testing.T) {
	srv := world(t)
	long := viewtest.Streamer(9, "a-rather-long-slug-name", "live", 123456, strings.Repeat("very long title ", 10), "Grand Theft Auto V")
	srv.Publish(viewtest.Event(kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, long))
	hs := start(t, srv, 100, 30, false)
	hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 5 })

	tests := []struct {
		w, h int
	}{{80, 24}, {200, 60}, {80, 24}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d", tt.w, tt.h), func(t *testing.T) {
			hs.resize(tt.w, tt.h)
			lines := hs.waitScreen("the new size", func(l []string) bool {
				return len(l) == tt.h && (strings.Contains(l[len(l)-1], "poll") || strings.Contains(l[len(l)-1], "status:"))
			})
			if len(lines) != tt.h {
				t.Fatalf("screen has %d lines, want %d", len(lines), tt.h)
			}
			if !strings.HasPrefix(lines[0], "kickview ") {
				t.Errorf("header = %q", lines[0])
			}
			_, hy := find(lines, "SLUG")
			for _, col := range []string{"STATUS", "TITLE", "CATEGORY", "VIEWERS", "LIVE FOR", "CONFIRMED"} {
				if !strings.Contains(lines[hy], col) {
					t.Errorf("heading row %q lacks %s", lines[hy], col)
				}
			}
			_, ry := find(lines, "a-rather")
			if ry < 0 || !strings.Contains(lines[ry], "123.5k") || !strings.Contains(lines[ry], "ago") {
				t.Errorf("long row does not fit: %q", lines[max(ry, 0)])
			}
			if got := tableSlugs(lines); len(got) != 5 {
				t.Errorf("rows = %v", got)
			}
			_, ey := find(lines, "EVENTS")
			if want := min(max(tt.h/4, 4), 12); tt.h-1-ey != want {
				t.Errorf("event pane is %d rows, want %d", tt.h-1-ey, want)
			}
		})
	}
}

func TestQuit(t *testing.T) {
	tests := []struct {
		name string
		key  func(*harness)
	}{
		{"q", func(hs *harness) { hs.key('q') }},
		{"q from help", func(hs *harness) { hs.key('?'); hs.waitText("kickview keys"); hs.key('q') }},
		{"Ctrl-C", func(hs *harness) { hs.special(tcell.KeyCtrlC) }},
		{"Ctrl-C in the filter", func(hs *harness) { hs.key('/'); hs.waitText("filter:"); hs.special(tcell.KeyCtrlC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := start(t, world(t), 80, 24, false)
			hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })
			tt.key(hs)
			if err, ok := hs.exit(); !ok || err != nil {
				t.Errorf("after %s: exited %v, err %v; want a clean exit", tt.name, ok, err)
			}
		})
	}
}

// TestLogKeepsColumnsApartWhenResized: the real kickview on a 150-column
// terminal shows a COVERAGE_CHANGED line with a gap before the slug, and
// shortens the kind when the terminal narrows (and back when it widens).
func TestLogKeepsColumnsApartWhenResized(t *testing.T) {
	srv := world(t)
	hs := start(t, srv, 150, 30, false)
	hs.waitScreen("rows", func(l []string) bool { return len(tableSlugs(l)) == 4 })
	badger := viewtest.Streamer(6, "lazy-badger6797", "offline", 0, "", "")
	ev := viewtest.Event(kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED, badger)
	ev.Coverage = &kickmonv1.Coverage{Source: kickmonv1.Source_SOURCE_PUSHER, Blind: true, Reason: "no channel id"}
	srv.Publish(ev)
	for _, step := range []struct {
		width int
		want  string
	}{
		{150, "COVERAGE_CHANGED  lazy-badger6797 pusher blind: no channel id"},
		{60, "COVERAGE  lazy-badger6797 pusher blind"},
		{80, "COVERAGE_CHANGED  lazy-badger6797"},
		{200, "COVERAGE_CHANGED  lazy-badger6797 pusher blind: no channel id"},
	} {
		if step.width != 150 {
			hs.resize(step.width, 30)
		}
		hs.waitScreen(fmt.Sprintf("%q at width %d", step.want, step.width), func(l []string) bool {
			_, y := find(l, step.want)
			return y >= 0 && utf8.RuneCountInString(l[0]) <= step.width
		})
	}
}
