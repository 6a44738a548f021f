package app

import (
	"strings"

	"github.com/gdamore/tcell/v2"
)

// onKey is the global key binding; it runs on the event loop. Keys it
// does not bind go on to the focused widget (the table's arrows, the
// filter's text).
func (a *App) onKey(ev *tcell.EventKey) *tcell.EventKey {
	if ev.Key() == tcell.KeyCtrlC {
		a.quit()
		return nil
	}
	if a.openIn {
		return ev // the input field handles Enter and Esc itself
	}
	if a.helpOpen {
		switch {
		case ev.Key() == tcell.KeyEscape, ev.Key() == tcell.KeyRune && ev.Rune() == '?':
			a.helpOpen = false
			a.pages.HidePage("help")
		case ev.Key() == tcell.KeyRune && ev.Rune() == 'q':
			a.quit()
		}
		return nil
	}
	if ev.Key() == tcell.KeyEscape {
		a.setFilter("")
		return nil
	}
	if ev.Key() != tcell.KeyRune {
		return ev
	}
	switch ev.Rune() {
	case 'q':
		a.quit()
	case 'r':
		if st := a.table.Selected(); st != nil {
			a.requestRefresh([]string{st.GetSlug()})
		} else {
			a.feed.Note("refresh: no streamer selected (R refreshes all)")
		}
	case 'R':
		a.requestRefresh(nil)
	case 's':
		a.mu.Lock()
		a.view.Sort = a.view.Sort.Next()
		a.mu.Unlock()
		a.table.Top()
		a.poke()
	case '/':
		a.mu.Lock()
		a.input.SetText(a.view.Filter)
		a.mu.Unlock()
		a.openIn = true
		a.layout.ResizeItem(a.input, 1, 0)
		a.tv.SetFocus(a.input)
	case '?':
		a.helpOpen = true
		a.pages.ShowPage("help")
	default:
		return ev
	}
	return nil
}

// filterDone closes the filter input: Enter applies its text, Esc clears
// the filter.
func (a *App) filterDone(key tcell.Key) {
	switch key {
	case tcell.KeyEnter:
		a.setFilter(a.input.GetText())
	case tcell.KeyEscape:
		a.setFilter("")
	default:
		return
	}
	a.openIn = false
	a.layout.ResizeItem(a.input, 0, 0)
	a.tv.SetFocus(a.table)
}

func (a *App) setFilter(text string) {
	text = strings.TrimSpace(text)
	a.mu.Lock()
	same := a.view.Filter == text
	a.view.Filter = text
	a.mu.Unlock()
	if same {
		return
	}
	a.table.Top()
	a.poke()
}

// requestRefresh hands a refresh to the worker without blocking the loop.
func (a *App) requestRefresh(slugs []string) {
	select {
	case a.refresh <- slugs:
	default:
		a.feed.Note("refresh: one is already in progress")
	}
}
