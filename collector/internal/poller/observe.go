package poller

import (
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Observe turns one channel of the official channels API into a status
// observation. Title, category, viewers and the thumbnail are reported
// only while live: an offline channel carries a zero category and no
// meaningful viewers (kick-api.md §1.5). channelID is Kick's channel id when known (0
// otherwise); observedAt is when kickmon asked for it (the answer is at
// least that fresh).
func Observe(ch kickrest.Channel, channelID int64, observedAt time.Time) observation.Observation {
	o := observation.Observation{
		Kind:       observation.Status,
		Source:     kickmonv1.Source_SOURCE_POLL,
		UserID:     ch.BroadcasterUserID,
		ChannelID:  channelID,
		Slug:       ch.Slug,
		Live:       observation.Offline,
		KickTime:   ch.ServerTime,
		ObservedAt: observedAt,
	}
	if ch.Live {
		o.Live = observation.Live
		o.StartedAt = ch.StartedAt
		o.HasTitle, o.Title = true, ch.Title
		o.HasCategory, o.CategoryID, o.CategoryName = true, ch.Category.ID, ch.Category.Name
		o.HasViewers, o.Viewers = true, ch.Viewers
		o.Thumbnail = ch.Thumbnail
	}
	return o
}
