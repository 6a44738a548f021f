// Package ui holds kickview's widgets: the streamer table, header, footer,
// disconnect banner, event log and help. Widgets render feed snapshots and
// never fetch data; every method that changes a widget must run on tview's
// event loop (inside QueueUpdate or an input handler). The pure functions
// (Arrange, Header, Footer, Banner, LogLines) may run anywhere.
package ui

import (
	"github.com/gdamore/tcell/v2"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Theme picks styles; with NoColor set every style is colourless (NO_COLOR)
// and meaning is carried by text and attributes alone.
type Theme struct {
	NoColor bool
}

func (t Theme) fg(c tcell.Color) tcell.Style {
	if t.NoColor {
		return tcell.StyleDefault
	}
	return tcell.StyleDefault.Foreground(c)
}

// Text is the plain text style.
func (t Theme) Text() tcell.Style { return tcell.StyleDefault }

// Heading is the style of column headings and pane titles.
func (t Theme) Heading() tcell.Style { return tcell.StyleDefault.Bold(true) }

// Faint is for secondary text (times, notes).
func (t Theme) Faint() tcell.Style { return t.fg(tcell.ColorGray) }

// Selected is the selected table row's style.
func (t Theme) Selected() tcell.Style { return tcell.StyleDefault.Reverse(true) }

// Banner is the disconnect banner's style.
func (t Theme) Banner() tcell.Style {
	if t.NoColor {
		return tcell.StyleDefault.Reverse(true).Bold(true)
	}
	return tcell.StyleDefault.Background(tcell.ColorMaroon).Foreground(tcell.ColorWhite).Bold(true)
}

// State is the style of a live state: green live, red offline, yellow unknown.
func (t Theme) State(s kickmonv1.LiveState) tcell.Style {
	switch s {
	case kickmonv1.LiveState_LIVE_STATE_LIVE:
		return t.fg(tcell.ColorGreen).Bold(true)
	case kickmonv1.LiveState_LIVE_STATE_OFFLINE:
		return t.fg(tcell.ColorRed)
	}
	return t.fg(tcell.ColorYellow)
}

// Health is the style of a source's health.
func (t Theme) Health(h kickmonv1.Health) tcell.Style {
	switch h {
	case kickmonv1.Health_HEALTH_OK:
		return t.fg(tcell.ColorGreen)
	case kickmonv1.Health_HEALTH_DEGRADED, kickmonv1.Health_HEALTH_RATE_LIMITED:
		return t.fg(tcell.ColorYellow).Bold(true)
	case kickmonv1.Health_HEALTH_BLOCKED, kickmonv1.Health_HEALTH_DOWN:
		return t.fg(tcell.ColorRed).Bold(true)
	}
	return t.Faint()
}

// Good and Bad colour short verdicts (connected, 429s) in the header and footer.
func (t Theme) Good() tcell.Style { return t.fg(tcell.ColorGreen) }

// Bad is the style of a problem worth noticing.
func (t Theme) Bad() tcell.Style { return t.fg(tcell.ColorRed).Bold(true) }
