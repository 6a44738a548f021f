package ui

import (
	"cmp"
	"slices"
	"strings"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/viewer/internal/feed"
)

// SortKey orders the table.
type SortKey int

const (
	// ByStatus puts live streamers first (most viewers first), then
	// unknown, then offline, each by name.
	ByStatus SortKey = iota
	// ByName orders by slug.
	ByName
	// ByViewers puts the most watched first.
	ByViewers
	// ByLastChange puts the most recently changed first.
	ByLastChange
	sortKeys
)

func (k SortKey) String() string {
	switch k {
	case ByStatus:
		return "status"
	case ByName:
		return "name"
	case ByViewers:
		return "viewers"
	case ByLastChange:
		return "last change"
	}
	return "?"
}

// Next is the key `s` switches to.
func (k SortKey) Next() SortKey { return (k + 1) % sortKeys }

// stateRank orders live, unknown, offline.
func stateRank(s kickmonv1.LiveState) int {
	switch s {
	case kickmonv1.LiveState_LIVE_STATE_LIVE:
		return 0
	case kickmonv1.LiveState_LIVE_STATE_OFFLINE:
		return 2
	}
	return 1
}

// Matches reports whether a row matches a filter: a case-insensitive
// substring of the slug, title or category. lower must be lower case.
func Matches(r feed.Row, lower string) bool {
	if lower == "" {
		return true
	}
	st := r.Streamer
	return containsFold(st.GetSlug(), lower) || containsFold(st.GetTitle(), lower) || containsFold(st.GetCategoryName(), lower)
}

func containsFold(s, lower string) bool {
	return strings.Contains(strings.ToLower(s), lower)
}

// Arrange filters rows (in place; pass a copy you own, as Snapshot gives)
// and sorts them by key with the slug as the last tie-breaker, so the
// order is stable between redraws.
func Arrange(rows []feed.Row, filter string, key SortKey) []feed.Row {
	if filter = strings.ToLower(strings.TrimSpace(filter)); filter != "" {
		rows = slices.DeleteFunc(rows, func(r feed.Row) bool { return !Matches(r, filter) })
	}
	viewers := func(r feed.Row) int64 { // as shown: none unless live
		if r.Streamer.GetState() != kickmonv1.LiveState_LIVE_STATE_LIVE {
			return 0
		}
		return r.Streamer.GetViewerCount()
	}
	byName := func(a, b feed.Row) int { return cmp.Compare(a.Streamer.GetSlug(), b.Streamer.GetSlug()) }
	var less func(a, b feed.Row) int
	// Comparators test the cheap keys first and the slug only on a tie
	// (cmp.Or would evaluate every key): sorting 10k rows runs per frame.
	switch key {
	case ByName:
		less = byName
	case ByViewers:
		less = func(a, b feed.Row) int {
			if c := cmp.Compare(viewers(b), viewers(a)); c != 0 {
				return c
			}
			return byName(a, b)
		}
	case ByLastChange:
		less = func(a, b feed.Row) int {
			if c := b.Changed.Compare(a.Changed); c != 0 {
				return c
			}
			return byName(a, b)
		}
	default:
		less = func(a, b feed.Row) int {
			if c := cmp.Compare(stateRank(a.Streamer.GetState()), stateRank(b.Streamer.GetState())); c != 0 {
				return c
			}
			if c := cmp.Compare(b.Streamer.GetViewerCount(), a.Streamer.GetViewerCount()); c != 0 {
				return c
			}
			return byName(a, b)
		}
	}
	slices.SortFunc(rows, less)
	return rows
}
