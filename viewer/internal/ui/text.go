package ui

import (
	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
	"github.com/rivo/uniseg"
)

// Span is a run of text in one style.
type Span struct {
	Text  string
	Style tcell.Style
}

// Line is one line of styled spans.
type Line []Span

// Lines is a primitive that draws styled lines, cut at its width (no
// markup parsing, so titles print exactly as Kick sends them). With Tail
// set it shows the last lines that fit, for logs.
type Lines struct {
	*tview.Box
	// Heading, when set, is drawn on the first row above the lines.
	Heading Line
	lines   []Line
	tail    bool
	dim     bool
}

// NewLines returns an empty Lines on the terminal's default background.
func NewLines(tail bool) *Lines {
	l := &Lines{Box: tview.NewBox(), tail: tail}
	l.SetBackgroundColor(tcell.ColorDefault)
	return l
}

// SetLines replaces the content; dim draws it dimmed (stale data).
func (l *Lines) SetLines(lines []Line, dim bool) {
	l.lines, l.dim = lines, dim
}

// Draw implements tview.Primitive.
func (l *Lines) Draw(screen tcell.Screen) {
	l.DrawForSubclass(screen, l)
	x, y, w, h := l.GetInnerRect()
	if l.Heading != nil && h > 0 {
		l.drawLine(screen, x, y, w, l.Heading, false)
		y, h = y+1, h-1
	}
	lines := l.lines
	if l.tail && len(lines) > h {
		lines = lines[len(lines)-h:]
	}
	for i, line := range lines {
		if i >= h {
			break
		}
		l.drawLine(screen, x, y+i, w, line, l.dim)
	}
}

func (l *Lines) drawLine(screen tcell.Screen, x, y, w int, line Line, dim bool) {
	col := x
	for _, sp := range line {
		col = drawString(screen, col, y, x+w-col, sp.Text, dimmed(sp.Style, dim))
	}
	// Let a line's last style fill the rest of the row (banners).
	if len(line) > 0 {
		st := dimmed(line[len(line)-1].Style, dim)
		for ; col < x+w; col++ {
			screen.SetContent(col, y, ' ', nil, st)
		}
	}
}

// drawString draws s at (x, y) within width cells and returns the next
// column; a string cut short ends in an ellipsis.
func drawString(screen tcell.Screen, x, y, width int, s string, style tcell.Style) int {
	end := x + width
	state := -1
	for s != "" {
		var cluster string
		var w int
		cluster, s, w, state = uniseg.FirstGraphemeClusterInString(s, state)
		if w == 0 {
			continue
		}
		if x+w > end || (s != "" && x+w == end && uniseg.StringWidth(s) > 0) {
			if x < end {
				screen.SetContent(x, y, '…', nil, style)
				x++
			}
			return x
		}
		runes := []rune(cluster)
		screen.SetContent(x, y, runes[0], runes[1:], style)
		x += w
	}
	return x
}

// dimmed adds the dim attribute when dim is set.
func dimmed(st tcell.Style, dim bool) tcell.Style {
	if dim {
		return st.Dim(true)
	}
	return st
}
