package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
	"github.com/kickmon/kickmon/collector/internal/observation"
)

// Kick channel events that carry live status (kick-api.md §2.3), the same on
// Pusher and Centrifugo. The backslashes are literal: on the wire they are
// the JSON string "App\\Events\\StreamerIsLive".
const (
	EventStreamerIsLive      = `App\Events\StreamerIsLive`
	EventStopStreamBroadcast = `App\Events\StopStreamBroadcast`
	EventLivestreamUpdated   = `App\Events\LivestreamUpdated`
)

// ChannelPrefix starts the realtime channel of a Kick channel: "channel.{id}".
const ChannelPrefix = "channel."

// ChannelName is the realtime channel of Kick channel channelID.
func ChannelName(channelID int64) string {
	return ChannelPrefix + strconv.FormatInt(channelID, 10)
}

// ChannelIDOf parses "channel.{id}"; 0 when name is something else.
func ChannelIDOf(name string) int64 {
	s, ok := strings.CutPrefix(name, ChannelPrefix)
	if !ok {
		return 0
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// Message is one realtime message: a Pusher frame, or the data of a
// Centrifugo publication. Data holds the inner JSON, unwrapped when it
// arrived as a JSON string (nil when absent or null).
type Message struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// ErrNoEvent is the error of a message without an event name.
var ErrNoEvent = errors.New("message has no event")

// DecodeMessages parses raw, which holds one or more JSON messages
// (Centrifugo puts several in one frame, separated by newlines), each
// {event, channel?, data} with data a JSON string ("double encoding", as
// Pusher and often Kick's Centrifugo send it) or a JSON value. It returns
// the messages decoded before the first bad one, and that one's error.
func DecodeMessages(raw []byte) ([]Message, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var out []Message
	for {
		var m Message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			if len(out) == 0 {
				return nil, errors.New("decode message: empty")
			}
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("decode message: %w", err)
		}
		if m.Event == "" {
			return out, ErrNoEvent
		}
		if m.Data, err = unwrap(m.Event, m.Data); err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// unwrap returns the inner JSON of data: a JSON string's text, else data.
func unwrap(event string, data json.RawMessage) (json.RawMessage, error) {
	d := bytes.TrimSpace(data)
	switch {
	case len(d) == 0 || bytes.Equal(d, []byte("null")):
		return nil, nil
	case d[0] == '"':
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return nil, fmt.Errorf("decode %s data string: %w", event, err)
		}
		return json.RawMessage(s), nil
	}
	return d, nil
}

// Kind classifies a channel event.
type Kind int

// Event kinds.
const (
	KindIgnored Kind = iota // protocol or other Kick events
	KindStatus              // one of the three live-status events
)

// Decoded payloads of the live-status events; fields Kick does not send
// stay zero, unknown fields are ignored.

type isLivePayload struct {
	Livestream struct {
		ID           kickjson.Int     `json:"id"`
		ChannelID    kickjson.Int     `json:"channel_id"`
		SessionTitle *kickjson.String `json:"session_title"`
		CreatedAt    string           `json:"created_at"`
	} `json:"livestream"`
}

type stopPayload struct {
	Livestream struct {
		ID      kickjson.Int `json:"id"`
		Channel struct {
			ID kickjson.Int `json:"id"`
		} `json:"channel"`
		ChannelID kickjson.Int `json:"channel_id"` // not seen on the wire; accepted
	} `json:"livestream"`
}

type categoryPayload struct {
	ID   kickjson.Int    `json:"id"`
	Name kickjson.String `json:"name"`
}

type updatedPayload struct {
	Livestream struct {
		ID           kickjson.Int      `json:"id"`
		ChannelID    kickjson.Int      `json:"channel_id"`
		CreatedAt    string            `json:"created_at"`
		StartTime    string            `json:"start_time"`
		SessionTitle *kickjson.String  `json:"session_title"`
		IsLive       *kickjson.Bool    `json:"is_live"`
		ViewerCount  *kickjson.Int     `json:"viewer_count"`
		Viewers      *kickjson.Int     `json:"viewers"`
		Category     *categoryPayload  `json:"category"`
		Categories   []categoryPayload `json:"categories"`
	} `json:"livestream"`
}

// parseTime parses a Kick date in UTC (kick-api.md §2.4: the feed sends
// "2025-09-15T21:12:45.000000Z" and "2024-02-06 19:10:40"); zero when s is
// empty or not a date, so that a bad date never loses the event it is in.
func parseTime(s string) time.Time {
	t, _ := kickjson.ParseTime(s) // zero on error
	return t.UTC()
}

// Parse maps a live-status message to an observation without source, user
// id or time (the provider knows the channel → user map). It returns the
// Kick channel id the event is about. Other events give KindIgnored and no
// error.
func Parse(m Message) (observation.Observation, int64, Kind, error) {
	o := observation.Observation{Kind: observation.Status}
	var chID int64
	switch m.Event {
	case EventStreamerIsLive:
		var p isLivePayload
		if err := json.Unmarshal(m.Data, &p); err != nil {
			return o, 0, KindStatus, fmt.Errorf("decode %s: %w", m.Event, err)
		}
		l := p.Livestream
		chID = int64(l.ChannelID)
		o.Live = observation.Live
		o.StartedAt = parseTime(l.CreatedAt)
		o.Provisional = true
		o.KickTime = o.StartedAt
		if l.SessionTitle != nil {
			o.HasTitle, o.Title = true, string(*l.SessionTitle)
		}
	case EventStopStreamBroadcast:
		var p stopPayload
		if err := json.Unmarshal(m.Data, &p); err != nil {
			return o, 0, KindStatus, fmt.Errorf("decode %s: %w", m.Event, err)
		}
		chID = int64(p.Livestream.Channel.ID)
		if chID == 0 {
			chID = int64(p.Livestream.ChannelID)
		}
		o.Live = observation.Offline
	case EventLivestreamUpdated:
		var p updatedPayload
		if err := json.Unmarshal(m.Data, &p); err != nil {
			return o, 0, KindStatus, fmt.Errorf("decode %s: %w", m.Event, err)
		}
		l := p.Livestream
		chID = int64(l.ChannelID)
		if l.IsLive != nil {
			o.Live = observation.Offline
			if *l.IsLive {
				o.Live = observation.Live
				o.StartedAt = parseTime(l.StartTime)
				if o.StartedAt.IsZero() {
					o.StartedAt = parseTime(l.CreatedAt)
				}
				o.Provisional = !o.StartedAt.IsZero()
			}
		}
		if l.SessionTitle != nil {
			o.HasTitle, o.Title = true, string(*l.SessionTitle)
		}
		if v := l.ViewerCount; v != nil {
			o.HasViewers, o.Viewers = true, int64(*v)
		} else if v := l.Viewers; v != nil {
			o.HasViewers, o.Viewers = true, int64(*v)
		}
		c := l.Category
		if c == nil && len(l.Categories) > 0 {
			c = &l.Categories[0]
		}
		if c != nil && (c.ID != 0 || c.Name != "") {
			o.HasCategory, o.CategoryID, o.CategoryName = true, int64(c.ID), string(c.Name)
		}
	default:
		return o, 0, KindIgnored, nil
	}
	if chID <= 0 {
		chID = ChannelIDOf(m.Channel)
	}
	if chID <= 0 {
		return o, 0, KindStatus, fmt.Errorf("%s: no channel id", m.Event)
	}
	o.ChannelID = chID
	return o, chID, KindStatus, nil
}
