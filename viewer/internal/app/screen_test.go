package app

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/viewer/internal/feed"
	"github.com/kickmon/kickmon/viewer/internal/viewtest"
)

// harness runs kickview on a simulation screen against a kickapitest fake.
type harness struct {
	t      *testing.T
	srv    *kickapitest.Server
	screen tcell.SimulationScreen
	app    *App
	done   chan error

	once   sync.Once
	err    error
	exited bool
}

func start(t *testing.T, srv *kickapitest.Server, w, h int, noColor bool) *harness {
	t.Helper()
	screen := tcell.NewSimulationScreen("UTF-8")
	a := New(Options{
		Screen:  screen,
		Client:  viewtest.Dial(t, srv),
		Socket:  srv.Path(),
		NoColor: noColor,
		Frame:   20 * time.Millisecond,
		Feed:    feed.Options{StatusEvery: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	})
	screen.SetSize(w, h) // after New, which initialises the screen
	hs := &harness{t: t, srv: srv, screen: screen, app: a, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { hs.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err, ok := hs.exit(); !ok {
			t.Errorf("Run did not return after cancel")
		} else if err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return hs
}

// exit waits (with a deadline) for Run to return; ok is false if it did not.
func (hs *harness) exit() (err error, ok bool) {
	hs.once.Do(func() {
		select {
		case hs.err = <-hs.done:
			hs.exited = true
		case <-time.After(10 * time.Second):
		}
	})
	return hs.err, hs.exited
}

// onLoop runs f on tview's event loop, where the screen is never being
// drawn, so reading it there is race-free.
func (hs *harness) onLoop(f func()) {
	done := make(chan struct{})
	go func() {
		hs.app.tv.QueueUpdate(f)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		hs.t.Fatal("event loop did not answer")
	}
}

// lines dumps the screen as text, one string per row, trailing blanks cut.
func (hs *harness) lines() []string {
	var out []string
	hs.onLoop(func() {
		cells, w, h := hs.screen.GetContents()
		for y := range h {
			var b strings.Builder
			for x := range w {
				c := cells[y*w+x]
				if len(c.Runes) == 0 {
					b.WriteByte(' ')
					continue
				}
				b.WriteString(string(c.Runes))
			}
			out = append(out, strings.TrimRight(b.String(), " "))
		}
	})
	return out
}

// styleAt reads the style of the cell at (x, y).
func (hs *harness) styleAt(x, y int) tcell.Style {
	var st tcell.Style
	hs.onLoop(func() {
		cells, w, _ := hs.screen.GetContents()
		st = cells[y*w+x].Style
	})
	return st
}

// styles returns every cell's style.
func (hs *harness) styles() []tcell.Style {
	var out []tcell.Style
	hs.onLoop(func() {
		cells, _, _ := hs.screen.GetContents()
		for _, c := range cells {
			out = append(out, c.Style)
		}
	})
	return out
}

// waitScreen polls the screen until cond holds; it returns the lines that
// satisfied it.
func (hs *harness) waitScreen(what string, cond func([]string) bool) []string {
	hs.t.Helper()
	var lines []string
	viewtest.Wait(hs.t, what, func() bool { lines = hs.lines(); return cond(lines) }, func() string { return strings.Join(lines, "\n") })
	return lines
}

func (hs *harness) waitText(text string) []string {
	hs.t.Helper()
	return hs.waitScreen("screen to show "+text, func(l []string) bool { _, y := find(l, text); return y >= 0 })
}

func (hs *harness) waitGone(text string) []string {
	hs.t.Helper()
	return hs.waitScreen("screen to stop showing "+text, func(l []string) bool { _, y := find(l, text); return y < 0 })
}

func (hs *harness) key(r rune) { hs.screen.InjectKey(tcell.KeyRune, r, tcell.ModNone) }

func (hs *harness) special(k tcell.Key) { hs.screen.InjectKey(k, 0, tcell.ModNone) }

func (hs *harness) typeText(s string) {
	for _, r := range s {
		hs.key(r)
	}
}

// resize changes the simulated terminal's size and redraws, as a terminal
// resize would.
func (hs *harness) resize(w, h int) {
	hs.onLoop(func() { hs.screen.SetSize(w, h) })
	hs.screen.PostEvent(tcell.NewEventResize(w, h))
}

// find returns the cell column and row of the first occurrence of text, or
// (-1, -1).
func find(lines []string, text string) (x, y int) {
	for y, l := range lines {
		if i := strings.Index(l, text); i >= 0 {
			return len([]rune(l[:i])), y
		}
	}
	return -1, -1
}

// tableSlugs reads the first column of the table's rows, top to bottom.
func tableSlugs(lines []string) []string {
	_, y := find(lines, "SLUG")
	if y < 0 {
		return nil
	}
	var out []string
	for _, l := range lines[y+1:] {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] == "EVENTS" {
			break
		}
		out = append(out, f[0])
	}
	return out
}
