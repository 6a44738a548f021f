// Package app composes kickview: it wires the feed to the widgets, binds
// the keys and owns every goroutine. One render goroutine turns feed
// snapshots into widget content at most once per frame and hands it to
// tview's event loop with QueueUpdateDraw; key handlers run on the event
// loop and never block on the network.
package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/viewer/internal/feed"
	"github.com/kickmon/kickmon/viewer/internal/logkeys"
	"github.com/kickmon/kickmon/viewer/internal/ui"
	"github.com/rivo/tview"
)

// Options configure an App; zero values take defaults.
type Options struct {
	// Screen is drawn on (tview initialises it); nil means the terminal.
	Screen tcell.Screen
	// Client talks to the collector; required.
	Client kickmonv1.CollectorServiceClient
	// Socket names the collector's socket in messages.
	Socket string
	// Logger receives logs (default: discard).
	Logger *slog.Logger
	// NoColor draws without colours (NO_COLOR).
	NoColor bool
	// Frame is the least time between two redraws (default 100ms).
	Frame time.Duration
	// Feed tunes the feed (status period, backoff); Logger and Socket are
	// filled in from these options.
	Feed feed.Options
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// logTail is how many log entries are formatted per frame; the pane is
// never taller.
const logTail = 100

// App is a running kickview.
type App struct {
	opts  Options
	log   *slog.Logger
	theme ui.Theme
	feed  *feed.Feed

	tv       *tview.Application
	pages    *tview.Pages
	layout   *tview.Flex
	header   *ui.Lines
	banner   *ui.Lines
	table    *ui.StreamerTable
	logPane  *ui.Lines
	input    *tview.InputField
	footer   *ui.Lines
	helpOpen bool // event loop only
	openIn   bool // filter input shown; event loop only

	mu   sync.Mutex
	view ui.View

	logWidth atomic.Int32 // the log pane's width at the last draw (0 before it)

	kick     chan struct{} // a key changed the view: render now
	refresh  chan []string // refresh requests for the worker
	started  chan struct{} // closed after the first draw
	cancel   context.CancelFunc
	firstRun sync.Once
}

// New builds the widgets; Run shows them.
func New(opts Options) *App {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Frame <= 0 {
		opts.Frame = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	fo := opts.Feed
	fo.Logger, fo.Socket = opts.Logger, opts.Socket
	a := &App{
		opts:    opts,
		log:     opts.Logger.With(logkeys.Component, "app"),
		theme:   ui.Theme{NoColor: opts.NoColor},
		feed:    feed.New(opts.Client, fo),
		kick:    make(chan struct{}, 1),
		refresh: make(chan []string, 1),
		started: make(chan struct{}),
	}
	a.build()
	return a
}

func (a *App) build() {
	th := a.theme
	a.header = ui.NewLines(false)
	a.banner = ui.NewLines(false)
	a.table = ui.NewStreamerTable(th)
	a.logPane = ui.NewLines(true)
	a.logPane.Heading = ui.Line{{Text: "EVENTS", Style: th.Heading()}, {Text: "  newest last", Style: th.Faint()}}
	a.footer = ui.NewLines(false)

	a.input = tview.NewInputField().SetLabel("filter: ")
	a.input.SetBackgroundColor(tcell.ColorDefault)
	a.input.SetLabelStyle(th.Heading())
	a.input.SetFieldStyle(tcell.StyleDefault.Underline(true))
	a.input.SetPlaceholder("slug, title or category — Enter applies, Esc clears")
	a.input.SetPlaceholderStyle(th.Faint().Underline(true))
	a.input.SetDoneFunc(a.filterDone)

	a.layout = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(a.header, 1, 0, false).
		AddItem(a.banner, 0, 0, false).
		AddItem(a.table, 0, 1, true).
		AddItem(a.logPane, 6, 0, false).
		AddItem(a.input, 0, 0, false).
		AddItem(a.footer, 1, 0, false)

	help := ui.NewLines(false)
	helpText := ui.Help(th)
	help.SetLines(helpText, false)
	help.SetBorder(true).SetTitle(" help ").SetBorderStyle(th.Text()).SetTitleColor(tcell.ColorDefault)
	const helpWidth = 76
	helpColumn := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(nil, 0, 1, false).
		AddItem(help, len(helpText)+2, 0, false).
		AddItem(nil, 0, 1, false)
	centered := tview.NewFlex().
		AddItem(nil, 0, 1, false).
		AddItem(helpColumn, helpWidth, 0, false).
		AddItem(nil, 0, 1, false)

	a.pages = tview.NewPages().
		AddPage("main", a.layout, true, true).
		AddPage("help", centered, true, false)
	a.pages.SetBackgroundColor(tcell.ColorDefault)

	a.tv = tview.NewApplication().SetRoot(a.pages, true).SetFocus(a.table)
	if a.opts.Screen != nil {
		a.tv.SetScreen(a.opts.Screen)
	}
	a.tv.SetInputCapture(a.onKey)
	a.tv.SetBeforeDrawFunc(func(screen tcell.Screen) bool {
		w, h := screen.Size()
		a.layout.ResizeItem(a.logPane, min(max(h/4, 4), 12), 0)
		// The log spans the screen; its columns are laid out for its width,
		// so a new width needs a new render.
		if a.logWidth.Swap(int32(w)) != int32(w) {
			a.poke()
		}
		// The help box shrinks with the terminal rather than hang off its left.
		centered.ResizeItem(helpColumn, min(helpWidth, w), 0)
		return false
	})
	a.tv.SetAfterDrawFunc(func(tcell.Screen) { a.firstRun.Do(func() { close(a.started) }) })
}

// Run shows the dashboard until ctx ends or the user quits. It stops every
// goroutine it started before returning.
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.cancel = cancel

	loopDone := make(chan struct{})
	var loopErr error
	go func() {
		defer close(loopDone)
		loopErr = a.tv.Run()
	}()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.feed.Run(ctx); err != nil {
			a.log.Error("feed stopped", logkeys.Err, err)
		}
	})
	wg.Go(func() { a.renderLoop(ctx, loopDone) })
	wg.Go(func() { a.refreshLoop(ctx) })

	select {
	case <-ctx.Done():
	case <-loopDone:
	}
	cancel()
	wg.Wait()
	// Stop only a loop that has started: tview would otherwise open a
	// terminal of its own.
	select {
	case <-a.started:
		a.tv.Stop()
	case <-loopDone:
	}
	<-loopDone
	return loopErr
}

// quit ends Run; called on the event loop.
func (a *App) quit() {
	if a.cancel != nil {
		a.cancel()
	}
}

// renderLoop redraws after feed changes, key actions and every second (the
// clock, "live for" and "ago" columns), at most once per frame however many
// events arrive.
func (a *App) renderLoop(ctx context.Context, loopDone <-chan struct{}) {
	clock := time.NewTicker(time.Second)
	defer clock.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.feed.Changed():
		case <-a.kick:
		case <-clock.C:
		}
		a.render(loopDone)
		pause := time.NewTimer(a.opts.Frame)
		select {
		case <-ctx.Done():
			pause.Stop()
			return
		case <-a.kick: // a key press is not kept waiting for the frame
			pause.Stop()
			a.render(loopDone)
		case <-pause.C:
		}
	}
}

// render computes everything off the event loop and only hands the
// results to the widgets on it.
func (a *App) render(loopDone <-chan struct{}) {
	snap := a.feed.Snapshot()
	a.mu.Lock()
	v := a.view
	a.mu.Unlock()
	rows := ui.Arrange(snap.Rows, v.Filter, v.Sort)
	v.Shown = len(rows)
	now := a.opts.Now()
	header := []ui.Line{ui.Header(a.theme, snap, v, now)}
	banner := ui.Banner(a.theme, snap, now)
	footer := []ui.Line{ui.Footer(a.theme, snap, now)}
	entries := snap.Log
	if len(entries) > logTail {
		entries = entries[len(entries)-logTail:]
	}
	logs := ui.LogLines(a.theme, entries, int(a.logWidth.Load()))
	dim := snap.State == feed.Disconnected

	a.onLoop(loopDone, func() {
		a.table.Set(rows, now, dim)
		a.header.SetLines(header, false)
		a.banner.SetLines(banner, false)
		a.layout.ResizeItem(a.banner, len(banner), 0)
		a.logPane.SetLines(logs, dim)
		a.footer.SetLines(footer, dim)
	})
}

// onLoop runs f on the event loop and redraws; it gives up if the loop
// has ended, so the render goroutine can never hang on a dead loop.
func (a *App) onLoop(loopDone <-chan struct{}, f func()) {
	done := make(chan struct{})
	go func() {
		a.tv.QueueUpdateDraw(f)
		close(done)
	}()
	select {
	case <-done:
	case <-loopDone:
	}
}

// poke asks the render goroutine for a frame now.
func (a *App) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// refreshLoop sends refresh requests one at a time, off the event loop.
func (a *App) refreshLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case slugs := <-a.refresh:
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := a.feed.Refresh(rctx, slugs...); err != nil {
				a.log.Warn("refresh failed", logkeys.Slugs, slugs, logkeys.Err, err)
			}
			cancel()
		}
	}
}
