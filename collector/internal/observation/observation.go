// Package observation defines what every source (poller, Pusher, webhooks)
// reports to the monitor: one Observation type, so the state machine never
// needs to know which wire format a fact came from.
package observation

import (
	"time"
	"unicode/utf8"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Kind says what an observation is about.
type Kind int

const (
	// Status is a report on one streamer's stream (live, offline or metadata).
	Status Kind = iota
	// Coverage says a source became blind for some streamers, or can see them again.
	Coverage
)

// Liveness is what a status observation says about being live.
type Liveness int

const (
	// LiveUnknown: the observation says nothing about liveness (metadata only).
	LiveUnknown Liveness = iota
	// Live: the streamer is streaming.
	Live
	// Offline: the streamer is not streaming.
	Offline
)

func (l Liveness) String() string {
	switch l {
	case Live:
		return "live"
	case Offline:
		return "offline"
	}
	return "unknown"
}

// Observation is one fact from one source at one time. Fields a source did
// not report are left zero, with the Has* flags saying which optional
// fields are meaningful.
type Observation struct {
	Kind   Kind
	Source kickmonv1.Source

	// UserID is the streamer's broadcaster_user_id. Coverage observations
	// with no UserIDs apply to every streamer the source watches.
	UserID  int64
	UserIDs []int64 // Coverage only: the streamers concerned

	// ChannelID is Kick's channel id when the source learned it (0 otherwise).
	ChannelID int64
	// Slug is the streamer's slug when the source reports one.
	Slug string

	Live Liveness
	// StartedAt is the stream's start time; zero when not reported.
	StartedAt time.Time
	// Provisional is true when StartedAt is push's created_at, not Kick's
	// official start time.
	Provisional bool
	// EndedAt is Kick's end time, when the source gives one (webhooks).
	EndedAt time.Time

	HasTitle     bool
	Title        string
	HasCategory  bool
	CategoryID   int64
	CategoryName string
	HasViewers   bool
	Viewers      int64
	// Thumbnail is the stream's preview image URL (the official API's
	// stream.thumbnail, while live); empty when not reported.
	Thumbnail string

	// KickTime is when Kick says this happened; zero when Kick gave no time.
	KickTime time.Time
	// ObservedAt is when kickmon received the fact.
	ObservedAt time.Time

	// Blind and Reason describe a Coverage observation.
	Blind  bool
	Reason string
}

// Checker schedules out-of-turn checks of streamers through the official
// API (the poller implements it). It never blocks: requests are coalesced
// into the poller's next batches.
type Checker interface {
	CheckNow(userIDs ...int64)
}

// Caps on the strings an observation carries, in bytes (cut on a rune
// boundary). Kick's own limits are lower (slugs 25, titles about 140
// characters); the caps only bound what a hostile or broken source can
// make kickmon store and send.
const (
	MaxSlugBytes     = 64
	MaxTitleBytes    = 512
	MaxCategoryBytes = 128
	MaxReasonBytes   = 512
	MaxURLBytes      = 2048
)

// Sanitized returns o with every string valid UTF-8 (invalid bytes become
// U+FFFD), without NUL bytes (PostgreSQL's text refuses them) and within
// its cap. The engine applies it to every observation before the monitor
// sees it, whatever the source, so no string from Kick can make an event
// that the spool or the database refuses.
func (o Observation) Sanitized() Observation {
	o.Slug = Clean(o.Slug, MaxSlugBytes)
	o.Title = Clean(o.Title, MaxTitleBytes)
	o.CategoryName = Clean(o.CategoryName, MaxCategoryBytes)
	o.Reason = Clean(o.Reason, MaxReasonBytes)
	if len(o.Thumbnail) > MaxURLBytes {
		o.Thumbnail = "" // a cut URL is a wrong URL
	}
	o.Thumbnail = Clean(o.Thumbnail, MaxURLBytes)
	return o
}

// Clean returns s as valid UTF-8 without NUL bytes, cut to at most max
// bytes on a rune boundary.
func Clean(s string, max int) string {
	s = kickjson.Text(s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
