package ui

import (
	"github.com/gdamore/tcell/v2"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/viewer/internal/feed"
	"github.com/rivo/tview"
	"time"
)

// Columns of the streamer table.
const (
	colSlug = iota
	colStatus
	colTitle
	colCategory
	colViewers
	colLiveFor
	colConfirmed
	numCols
)

var headings = [numCols]string{"SLUG", "STATUS", "TITLE", "CATEGORY", "VIEWERS", "LIVE FOR", "CONFIRMED"}

// StreamerTable is the table of streamers: a virtual tview.Table that
// builds cells only for the rows on screen, so 10k rows cost no more to
// draw than 20. Column widths follow the table's width: the fixed columns
// keep theirs and title and category share the rest.
type StreamerTable struct {
	*tview.Table
	content *tableContent
	top     bool // the next Set selects the first row
}

// NewStreamerTable returns an empty table.
func NewStreamerTable(theme Theme) *StreamerTable {
	c := &tableContent{theme: theme}
	t := &StreamerTable{Table: tview.NewTable(), content: c}
	t.SetContent(c)
	t.SetFixed(1, 0)
	t.SetSelectable(true, false)
	t.SetSelectedStyle(theme.Selected())
	t.SetBackgroundColor(tcell.ColorDefault)
	t.SetBordersColor(tcell.ColorDefault) // also the column separators' colour
	return t
}

// Set shows rows as of now; dim draws them dimmed (stale data). The
// selection stays on the same streamer when it is still shown.
func (t *StreamerTable) Set(rows []feed.Row, now time.Time, dim bool) {
	sel := t.Selected()
	t.content.rows, t.content.now, t.content.dim = rows, now, dim
	if t.top {
		t.top = false
		t.Select(1, 0)
		t.ScrollToBeginning()
		return
	}
	if sel == nil {
		return
	}
	for i, r := range rows {
		if r.Streamer.GetBroadcasterUserId() == sel.GetBroadcasterUserId() {
			t.Select(i+1, 0)
			return
		}
	}
}

// Top makes the next Set start at the first row (a new sort or filter);
// otherwise the selection follows its streamer.
func (t *StreamerTable) Top() { t.top = true }

// Selected is the streamer on the selected row, nil if none.
func (t *StreamerTable) Selected() *kickmonv1.Streamer {
	row, _ := t.GetSelection()
	if row < 1 || row > len(t.content.rows) {
		return nil
	}
	return t.content.rows[row-1].Streamer
}

// Len is the number of streamer rows.
func (t *StreamerTable) Len() int { return len(t.content.rows) }

// Draw implements tview.Primitive, fitting the columns to the width first.
func (t *StreamerTable) Draw(screen tcell.Screen) {
	_, _, w, _ := t.GetInnerRect()
	t.content.widths = columnWidths(w)
	t.Table.Draw(screen)
}

// columnWidths shares width among the columns (one space between each).
func columnWidths(width int) [numCols]int {
	var w [numCols]int
	w[colStatus], w[colViewers], w[colLiveFor], w[colConfirmed] = 7, 7, 8, 9
	w[colSlug] = min(max(width/6, 10), 24)
	rest := width - (numCols - 1)
	for i, n := range w {
		if i != colTitle && i != colCategory {
			rest -= n
		}
	}
	rest = max(rest, 2)
	w[colCategory] = min(rest/3, 24)
	w[colTitle] = rest - w[colCategory]
	return w
}

type tableContent struct {
	tview.TableContentReadOnly
	theme  Theme
	rows   []feed.Row
	now    time.Time
	dim    bool
	widths [numCols]int
}

func (c *tableContent) GetRowCount() int    { return len(c.rows) + 1 }
func (c *tableContent) GetColumnCount() int { return numCols }

func (c *tableContent) GetCell(row, col int) *tview.TableCell {
	if col < 0 || col >= numCols {
		return nil
	}
	if row == 0 {
		cell := c.cell(headings[col], col, c.theme.Heading())
		cell.NotSelectable = true
		return cell
	}
	if row > len(c.rows) {
		return nil
	}
	st := c.rows[row-1].Streamer
	var text string
	style := c.theme.Text()
	switch col {
	case colSlug:
		text = st.GetSlug()
	case colStatus:
		text, style = StateText(st.GetState()), c.theme.State(st.GetState())
	case colTitle:
		text = st.GetTitle()
	case colCategory:
		text = st.GetCategoryName()
	case colViewers:
		if st.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE {
			text = Count(st.GetViewerCount())
		}
	case colLiveFor:
		if st.GetLiveSince() != nil {
			text = Dur(c.now.Sub(st.GetLiveSince().AsTime()))
		}
	case colConfirmed:
		text = Ago(c.now, st.GetLastConfirmedAt())
	}
	return c.cell(text, col, dimmed(style, c.dim))
}

func (c *tableContent) cell(text string, col int, style tcell.Style) *tview.TableCell {
	cell := tview.NewTableCell(tview.Escape(text))
	cell.SetStyle(style)
	cell.SetSelectedStyle(style.Reverse(true))
	cell.MaxWidth = c.widths[col]
	if col >= colViewers {
		cell.Align = tview.AlignRight
	}
	if col == colTitle {
		cell.Expansion = 1
	}
	return cell
}
