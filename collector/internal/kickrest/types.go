package kickrest

import (
	"encoding/json"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
)

// Category is a Kick category. Offline channels carry the zero Category.
type Category struct {
	ID        int64
	Name      string
	Thumbnail string
}

// Channel is an item of GET /public/v1/channels (kick-api.md §1.5). It has
// no channel id: only the user id and the slug.
type Channel struct {
	BroadcasterUserID int64
	Slug              string
	Title             string // stream_title
	Category          Category
	Live              bool      // stream.is_live
	StartedAt         time.Time // stream.start_time; zero when offline
	Viewers           int64     // stream.viewer_count
	Language          string
	Mature            bool
	Thumbnail         string
	Tags              []string
	// ServerTime is the Date header of the response that carried the item:
	// Kick's clock when it answered (zero if absent).
	ServerTime time.Time
}

type wireChannel struct {
	BroadcasterUserID kickjson.Int    `json:"broadcaster_user_id"`
	Slug              kickjson.String `json:"slug"`
	StreamTitle       kickjson.String `json:"stream_title"`
	Category          wireCategory    `json:"category"`
	Stream            *wireStream     `json:"stream"`
}

type wireStream struct {
	IsLive      kickjson.Bool   `json:"is_live"`
	IsMature    kickjson.Bool   `json:"is_mature"`
	Language    kickjson.String `json:"language"`
	StartTime   kickjson.Time   `json:"start_time"`
	ViewerCount kickjson.Int    `json:"viewer_count"`
	Thumbnail   kickjson.String `json:"thumbnail"`
	CustomTags  flexStrings     `json:"custom_tags"`
}

func (w wireChannel) channel() Channel {
	c := Channel{
		BroadcasterUserID: int64(w.BroadcasterUserID),
		Slug:              string(w.Slug),
		Title:             string(w.StreamTitle),
		Category:          w.Category.category(),
	}
	if s := w.Stream; s != nil {
		c.Live = bool(s.IsLive)
		c.Mature = bool(s.IsMature)
		c.Language = string(s.Language)
		c.StartedAt = time.Time(s.StartTime)
		c.Viewers = int64(s.ViewerCount)
		c.Thumbnail = string(s.Thumbnail)
		c.Tags = s.CustomTags
	}
	return c
}

// DecodeChannels decodes the body of GET /public/v1/channels. Items without
// a broadcaster_user_id are dropped.
func DecodeChannels(body []byte) ([]Channel, error) {
	if out, err := fastChannels(body); err == nil {
		return out, nil
	}
	return slowChannels(body)
}

// slowChannels is DecodeChannels through encoding/json: what fastChannels
// must agree with.
func slowChannels(body []byte) ([]Channel, error) {
	return decodeItems(body, func(w wireChannel) (Channel, bool) { return w.channel(), w.BroadcasterUserID > 0 })
}

// Livestream is an item of the deprecated GET /public/v1/livestreams
// (kick-api.md §1.6a), the only official source of channel_id.
type Livestream struct {
	BroadcasterUserID int64
	ChannelID         int64
	Slug              string
	Title             string
	Category          Category
	StartedAt         time.Time
	Viewers           int64
	Language          string
	Mature            bool
	Thumbnail         string
	Tags              []string
}

type wireLivestream struct {
	BroadcasterUserID kickjson.Int    `json:"broadcaster_user_id"`
	ChannelID         kickjson.Int    `json:"channel_id"`
	Slug              kickjson.String `json:"slug"`
	StreamTitle       kickjson.String `json:"stream_title"`
	Category          wireCategory    `json:"category"`
	StartedAt         kickjson.Time   `json:"started_at"`
	ViewerCount       kickjson.Int    `json:"viewer_count"`
	Language          kickjson.String `json:"language"`
	HasMatureContent  kickjson.Bool   `json:"has_mature_content"`
	Thumbnail         kickjson.String `json:"thumbnail"`
	CustomTags        flexStrings     `json:"custom_tags"`
}

// DecodeLivestreams decodes the body of GET /public/v1/livestreams.
func DecodeLivestreams(body []byte) ([]Livestream, error) {
	return decodeItems(body, func(w wireLivestream) (Livestream, bool) {
		return Livestream{
			BroadcasterUserID: int64(w.BroadcasterUserID),
			ChannelID:         int64(w.ChannelID),
			Slug:              string(w.Slug),
			Title:             string(w.StreamTitle),
			Category:          w.Category.category(),
			StartedAt:         time.Time(w.StartedAt),
			Viewers:           int64(w.ViewerCount),
			Language:          string(w.Language),
			Mature:            bool(w.HasMatureContent),
			Thumbnail:         string(w.Thumbnail),
			Tags:              w.CustomTags,
		}, w.BroadcasterUserID > 0
	})
}

// DecodePublicKey decodes the body of GET /public/v1/public-key and returns
// the PEM text (possibly empty).
func DecodePublicKey(body []byte) (string, error) {
	d, err := decodeData[struct {
		PublicKey kickjson.String `json:"public_key"`
	}](body)
	return string(d.PublicKey), err
}

// EventSpec names an event type and version to subscribe to.
type EventSpec struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// Webhook events kickmon subscribes to (kick-api.md §1.10.3).
var (
	EventLivestreamStatus   = EventSpec{Name: "livestream.status.updated", Version: 1}
	EventLivestreamMetadata = EventSpec{Name: "livestream.metadata.updated", Version: 1}
)

// Subscription is an item of GET /public/v1/events/subscriptions.
type Subscription struct {
	ID                string
	AppID             string
	BroadcasterUserID int64
	Event             string
	Version           int
	Method            string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

type wireSubscription struct {
	ID                kickjson.String `json:"id"`
	AppID             kickjson.String `json:"app_id"`
	BroadcasterUserID kickjson.Int    `json:"broadcaster_user_id"`
	Event             kickjson.String `json:"event"`
	Version           kickjson.Int    `json:"version"`
	Method            kickjson.String `json:"method"`
	CreatedAt         kickjson.Time   `json:"created_at"`
	UpdatedAt         kickjson.Time   `json:"updated_at"`
}

// DecodeSubscriptions decodes the body of GET /public/v1/events/subscriptions.
func DecodeSubscriptions(body []byte) ([]Subscription, error) {
	return decodeItems(body, func(w wireSubscription) (Subscription, bool) {
		return Subscription{
			ID:                string(w.ID),
			AppID:             string(w.AppID),
			BroadcasterUserID: int64(w.BroadcasterUserID),
			Event:             string(w.Event),
			Version:           int(w.Version),
			Method:            string(w.Method),
			CreatedAt:         time.Time(w.CreatedAt),
			UpdatedAt:         time.Time(w.UpdatedAt),
		}, true
	})
}

// SubscriptionResult is one event's outcome of CreateSubscription. Error is
// Kick's per-event error ("" on success).
type SubscriptionResult struct {
	Name           string
	Version        int
	SubscriptionID string
	Error          string
}

// DecodeSubscriptionResults decodes the body of POST
// /public/v1/events/subscriptions.
func DecodeSubscriptionResults(body []byte) ([]SubscriptionResult, error) {
	return decodeItems(body, func(w wireSubscriptionResult) (SubscriptionResult, bool) {
		return SubscriptionResult{
			Name: string(w.Name), Version: int(w.Version),
			SubscriptionID: string(w.SubscriptionID), Error: string(w.Error),
		}, true
	})
}

type wireSubscriptionResult struct {
	Name           kickjson.String `json:"name"`
	Version        kickjson.Int    `json:"version"`
	SubscriptionID kickjson.String `json:"subscription_id"`
	Error          kickjson.String `json:"error"`
}

// subscribeBody is the body of POST /public/v1/events/subscriptions.
type subscribeBody struct {
	BroadcasterUserID int64       `json:"broadcaster_user_id"`
	Events            []EventSpec `json:"events"`
	Method            string      `json:"method"`
}

func (b subscribeBody) marshal() ([]byte, error) { return json.Marshal(b) }
