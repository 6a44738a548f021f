package ui

import (
	"fmt"
	"strings"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/viewer/internal/feed"
)

// View is what the user chose to see.
type View struct {
	Sort   SortKey
	Filter string
	// Shown is how many rows pass the filter.
	Shown int
}

const sep = "  "

// Header is the top line: time, counts, connection state, sort and filter.
func Header(theme Theme, s feed.Snapshot, v View, now time.Time) Line {
	line := Line{
		{"kickview ", theme.Heading()},
		{now.Format("15:04:05") + sep, theme.Text()},
		{fmt.Sprintf("%d streamers, ", len(s.Rows)), theme.Text()},
		{fmt.Sprintf("%d live", s.Live), theme.State(kickmonv1.LiveState_LIVE_STATE_LIVE)},
		{sep, theme.Text()},
	}
	switch s.State {
	case feed.Connected:
		line = append(line, Span{"● connected", theme.Good()})
	case feed.Connecting:
		line = append(line, Span{"○ connecting", theme.State(kickmonv1.LiveState_LIVE_STATE_UNKNOWN)})
	default:
		line = append(line, Span{"✕ DISCONNECTED", theme.Bad()})
	}
	line = append(line, realtimeSpans(theme, s.Status, now)...)
	line = append(line, Span{fmt.Sprintf("%ssort: %s", sep, v.Sort), theme.Text()})
	if v.Filter != "" {
		line = append(line, Span{fmt.Sprintf("%sfilter: %q (%d)", sep, v.Filter, v.Shown), theme.Heading()})
	}
	line = append(line, Span{fmt.Sprintf("%s? help%sseq %d", sep, sep, s.LastSeq), theme.Faint()})
	return line
}

// realtimeSpans say in words which realtime provider is in use and since
// when, or that the feed is blind and why (nothing before the first status).
func realtimeSpans(theme Theme, st *kickmonv1.CollectorStatus, now time.Time) Line {
	rt := st.GetRealtime()
	if rt == nil {
		return nil
	}
	switch {
	case rt.GetHealth() == kickmonv1.Health_HEALTH_DISABLED:
		return Line{{sep + "realtime off", theme.Faint()}}
	case rt.GetProvider() == "":
		return Line{{sep + "REALTIME BLIND: " + rt.GetBlindReason(), theme.Bad()}}
	}
	text := fmt.Sprintf("%srealtime %s", sep, rt.GetProvider())
	if since := rt.GetProviderSince(); since != nil {
		text += fmt.Sprintf(" since %s (%s)", since.AsTime().In(now.Location()).Format("15:04"), Dur(now.Sub(since.AsTime())))
	}
	if !rt.GetNegotiated() {
		text += " (fallback)"
	}
	if n := rt.GetStreamersBlind(); n > 0 {
		text += fmt.Sprintf(", %d blind", n)
	}
	return Line{{text, theme.Health(rt.GetHealth())}}
}

// Banner is the two-line notice shown while disconnected, nil otherwise.
func Banner(theme Theme, s feed.Snapshot, now time.Time) []Line {
	if s.State != feed.Disconnected {
		return nil
	}
	shown := "showing the last data (dimmed)"
	if len(s.Rows) == 0 {
		shown = "no data yet"
	}
	head := fmt.Sprintf(" DISCONNECTED for %s — %s; reconnecting, attempt %d", Dur(now.Sub(s.Since)), shown, s.Attempts)
	why := " unknown error"
	if s.Err != nil {
		why = " " + s.Err.Error()
	}
	return []Line{{{head, theme.Banner()}}, {{why, theme.Banner()}}}
}

// Footer is the bottom line: source health, sockets, request budget and
// rate-limit state, from the last GetStatus.
func Footer(theme Theme, s feed.Snapshot, now time.Time) Line {
	st := s.Status
	if st == nil {
		msg := "status: waiting for the collector"
		if s.StatusErr != nil {
			msg = "status: " + s.StatusErr.Error()
		}
		return Line{{msg, theme.Faint()}}
	}
	var line Line
	for i, src := range []kickmonv1.Source{kickmonv1.Source_SOURCE_POLL, realtimeSource(st), kickmonv1.Source_SOURCE_WEBHOOK} {
		if i > 0 {
			line = append(line, Span{" · ", theme.Faint()})
		}
		line = append(line, sourceSpans(theme, st, src)...)
	}
	b := st.GetBudget()
	line = append(line, Span{fmt.Sprintf(" · api %d/%d/min", b.GetUsedLastMinute(), b.GetRequestsPerMinute()), theme.Text()})
	switch until := b.GetBackoffUntil(); {
	case until != nil && until.AsTime().After(now):
		line = append(line, Span{fmt.Sprintf(" RATE-LIMITED %s", Dur(until.AsTime().Sub(now))), theme.Bad()})
	case b.GetRateLimitedTotal() > 0:
		line = append(line, Span{fmt.Sprintf(" 429s %d", b.GetRateLimitedTotal()), theme.Health(kickmonv1.Health_HEALTH_DEGRADED)})
	}
	if s.StatusErr != nil || now.Sub(s.StatusAt) > 10*time.Second {
		line = append(line, Span{fmt.Sprintf("%s(status %s old)", sep, Dur(now.Sub(s.StatusAt))), theme.Faint()})
	}
	return line
}

// realtimeSource is the source the collector reports its realtime feed
// under: Centrifugo or Pusher, whichever is in use (Pusher by default).
func realtimeSource(st *kickmonv1.CollectorStatus) kickmonv1.Source {
	for _, x := range st.GetSources() {
		if x.GetSource() == kickmonv1.Source_SOURCE_CENTRIFUGO {
			return x.GetSource()
		}
	}
	return kickmonv1.Source_SOURCE_PUSHER
}

func sourceSpans(theme Theme, st *kickmonv1.CollectorStatus, src kickmonv1.Source) Line {
	name := short(src.String(), "SOURCE_")
	var ss *kickmonv1.SourceStatus
	for _, x := range st.GetSources() {
		if x.GetSource() == src {
			ss = x
		}
	}
	if ss == nil {
		return Line{{name + " -", theme.Faint()}}
	}
	health := short(ss.GetHealth().String(), "HEALTH_")
	switch ss.GetHealth() {
	case kickmonv1.Health_HEALTH_OK:
		health = "ok"
	case kickmonv1.Health_HEALTH_DISABLED:
		health = "off"
	case kickmonv1.Health_HEALTH_RATE_LIMITED:
		health = "429"
	}
	line := Line{{name + " ", theme.Text()}, {health, theme.Health(ss.GetHealth())}}
	if src == realtimeSource(st) && len(st.GetSockets()) > 0 {
		up := 0
		for _, sock := range st.GetSockets() {
			if sock.GetState() == "connected" {
				up++
			}
		}
		line = append(line, Span{fmt.Sprintf(" %d/%d up", up, len(st.GetSockets())), theme.Text()})
	}
	return line
}

// wideLog is the least log width that shows kinds in full (STREAMER_REMOVED);
// narrower logs show their short forms (REMOVED).
const wideLog = 80

// kindWidth is the kind column's width for full names: the longest kind
// name, so that every kind keeps a gap before the slug.
var kindWidth = func() int {
	w := 0
	for _, name := range kickmonv1.EventKind_name {
		w = max(w, len(strings.TrimPrefix(name, "EVENT_KIND_")))
	}
	return w
}()

// shortKinds are the kinds' names for narrow logs, within compactKindWidth.
var shortKinds = map[kickmonv1.EventKind]string{
	kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:   "STARTED",
	kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:     "ENDED",
	kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:   "UPDATED",
	kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED:   "ADDED",
	kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED: "REMOVED",
	kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED: "RENAMED",
	kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED: "COVERAGE",
}

const compactKindWidth = 8

// kindCell is the kind column of a log line at the given log width: the
// name (full when the log is wide, short otherwise) cut to the column with
// an ellipsis if it must be, padded, and always followed by a gap.
func kindCell(k kickmonv1.EventKind, width int) string {
	name, w := strings.TrimPrefix(k.String(), "EVENT_KIND_"), kindWidth
	if width > 0 && width < wideLog {
		w = compactKindWidth
		if s, ok := shortKinds[k]; ok {
			name = s
		}
	}
	if r := []rune(name); len(r) > w {
		name = string(r[:w-1]) + "…"
	}
	return fmt.Sprintf("%-*s  ", w, name)
}

// LogLines renders event log entries, oldest first, for a log pane width
// cells wide (0: unknown, laid out as wide).
func LogLines(theme Theme, entries []feed.Entry, width int) []Line {
	out := make([]Line, 0, len(entries))
	for _, e := range entries {
		line := Line{{e.At.Local().Format("15:04:05") + " ", theme.Faint()}}
		if e.Event == nil {
			out = append(out, append(line, Span{"· " + e.Note, theme.Faint()}))
			continue
		}
		ev := e.Event
		st := ev.GetStreamer()
		style := theme.Text()
		switch ev.GetKind() {
		case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
			style = theme.State(kickmonv1.LiveState_LIVE_STATE_LIVE)
		case kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED:
			style = theme.State(kickmonv1.LiveState_LIVE_STATE_OFFLINE)
		case kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED:
			style = theme.State(kickmonv1.LiveState_LIVE_STATE_UNKNOWN)
		}
		line = append(line, Span{kindCell(ev.GetKind(), width), style}, Span{st.GetSlug(), theme.Heading()})
		var detail string
		switch ev.GetKind() {
		case kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED:
			detail = fmt.Sprintf("%q %s", st.GetTitle(), st.GetCategoryName())
		case kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED:
			detail = e.Detail
		case kickmonv1.EventKind_EVENT_KIND_STREAMER_RENAMED:
			detail = "was " + ev.GetPreviousSlug()
		case kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED:
			c := ev.GetCoverage()
			detail = short(c.GetSource().String(), "SOURCE_") + " sees it again"
			if c.GetBlind() {
				detail = short(c.GetSource().String(), "SOURCE_") + " blind: " + c.GetReason()
			}
		}
		if detail != "" {
			detail = " " + detail
		}
		line = append(line, Span{fmt.Sprintf("%s  via %s #%d", detail, short(ev.GetSource().String(), "SOURCE_"), ev.GetSeq()), theme.Text()})
		out = append(out, line)
	}
	return out
}

// Help is the help screen's text.
func Help(theme Theme) []Line {
	keys := [][2]string{
		{"q, Ctrl-C", "quit"},
		{"r", "refresh the selected streamer now (collector re-checks it)"},
		{"R", "refresh every watched streamer now"},
		{"s", "cycle the sort: status, name, viewers, last change"},
		{"/", "filter by slug, title, category (Enter applies, Esc clears)"},
		{"Esc", "clear the filter"},
		{"↑ ↓ PgUp PgDn", "move the selection (also j k g G)"},
		{"?", "show or hide this help"},
	}
	out := []Line{{{"kickview keys", theme.Heading()}}, nil}
	for _, k := range keys {
		out = append(out, Line{{fmt.Sprintf(" %-14s", k[0]), theme.Heading()}, {k[1], theme.Text()}})
	}
	out = append(out, nil,
		Line{{"Status: LIVE (green), OFFLINE (red), UNKNOWN (yellow).", theme.Text()}},
		Line{{"Updates stream from the collector; dimmed data means disconnected.", theme.Text()}},
		Line{{"Esc or ? closes this help.", theme.Faint()}})
	return out
}
