package ui

import (
	"fmt"
	"strings"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// StateText is the status column's word; it alone tells the states apart.
func StateText(s kickmonv1.LiveState) string {
	switch s {
	case kickmonv1.LiveState_LIVE_STATE_LIVE:
		return "LIVE"
	case kickmonv1.LiveState_LIVE_STATE_OFFLINE:
		return "OFFLINE"
	}
	return "UNKNOWN"
}

// Dur formats a duration compactly: 45s, 12m, 3h05m, 2d04h.
func Dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Ago formats how long before now t was, or "-" when t is unset.
func Ago(now time.Time, t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return Dur(now.Sub(t.AsTime())) + " ago"
}

// Count formats a viewer count: 950, 12.3k, 1.2M.
func Count(n int64) string {
	switch {
	case n < 10_000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}

// short drops an enum's prefix and lower-cases it: SOURCE_POLL → poll.
func short(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}
