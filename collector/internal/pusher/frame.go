package pusher

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
	"github.com/kickmon/kickmon/collector/internal/observation"
)

// Pusher protocol events (kick-api.md §3).
const (
	evConnectionEstablished = "pusher:connection_established"
	evPing                  = "pusher:ping"
	evPong                  = "pusher:pong"
	evError                 = "pusher:error"
	evSubscribe             = "pusher:subscribe"
	evUnsubscribe           = "pusher:unsubscribe"
	evSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	evSubscriptionError     = "pusher:subscription_error"
)

// Kick channel events that carry live status (kick-api.md §2.3). The
// backslashes are literal: on the wire they are the JSON string
// "App\\Events\\StreamerIsLive".
const (
	EventStreamerIsLive      = `App\Events\StreamerIsLive`
	EventStopStreamBroadcast = `App\Events\StopStreamBroadcast`
	EventLivestreamUpdated   = `App\Events\LivestreamUpdated`
)

// channelPrefix is the Pusher channel of a Kick channel: "channel.{id}".
const channelPrefix = "channel."

func channelName(channelID int64) string {
	return channelPrefix + strconv.FormatInt(channelID, 10)
}

// channelIDOf parses "channel.{id}"; 0 when name is something else.
func channelIDOf(name string) int64 {
	s, ok := strings.CutPrefix(name, channelPrefix)
	if !ok {
		return 0
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// channelsIn returns the ids of the "channel.{id}" names in a server
// message (Pusher names the channel it refuses in pusher:error's message).
func channelsIn(msg string) []int64 {
	var out []int64
	for i := 0; ; {
		j := strings.Index(msg[i:], channelPrefix)
		if j < 0 {
			return out
		}
		start := i + j
		end := start + len(channelPrefix)
		for end < len(msg) && msg[end] >= '0' && msg[end] <= '9' {
			end++
		}
		i = end
		if start > 0 && isNameByte(msg[start-1]) || partOfName(msg[end:]) {
			continue // part of another name, e.g. private-channel.1
		}
		if id := channelIDOf(msg[start:end]); id > 0 {
			out = append(out, id)
		}
	}
}

// partOfName reports whether rest, what follows a "channel.{digits}",
// continues the name (punctuation ending a sentence does not).
func partOfName(rest string) bool {
	if rest == "" || !isNameByte(rest[0]) {
		return false
	}
	if strings.IndexByte(".,;", rest[0]) >= 0 {
		return len(rest) > 1 && isNameByte(rest[1])
	}
	return true
}

// isNameByte reports whether b may appear in a Pusher channel name.
func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("_-=@,.;", b) >= 0
}

// refusalText is the server's explanation in pusher:subscription_error
// data ({"type","error","status"} or {"type","message"}).
func refusalText(data []byte) string {
	var d struct {
		Type    string       `json:"type"`
		Error   string       `json:"error"`
		Message string       `json:"message"`
		Status  kickjson.Int `json:"status"`
	}
	_ = json.Unmarshal(data, &d)
	text := cmp.Or(d.Error, d.Message, d.Type, "pusher:subscription_error")
	if d.Status != 0 {
		text = fmt.Sprintf("%s (%d)", text, d.Status)
	}
	return text
}

// frame is one server→client message.
type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

var errNoEvent = errors.New("frame has no event")

// decodeFrame parses a text frame and unwraps its data: Pusher sends data as
// a JSON-encoded string ("double encoding"), sometimes as an object; either
// way Data ends up holding the inner JSON (or nil when absent or null).
func decodeFrame(raw []byte) (frame, error) {
	var f frame
	if err := json.Unmarshal(raw, &f); err != nil {
		return frame{}, fmt.Errorf("decode frame: %w", err)
	}
	if f.Event == "" {
		return frame{}, errNoEvent
	}
	d := bytes.TrimSpace(f.Data)
	switch {
	case len(d) == 0 || bytes.Equal(d, []byte("null")):
		f.Data = nil
	case d[0] == '"':
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return frame{}, fmt.Errorf("decode %s data string: %w", f.Event, err)
		}
		f.Data = json.RawMessage(s)
	default:
		f.Data = d
	}
	return f, nil
}

// parseTime parses a Kick date in UTC (kick-api.md §2.4: Pusher sends
// "2025-09-15T21:12:45.000000Z" and "2024-02-06 19:10:40"); zero when s is
// empty or not a date, so that a bad date never loses the event it is in.
func parseTime(s string) time.Time {
	t, _ := kickjson.ParseTime(s) // zero on error
	return t.UTC()
}

// Decoded payloads of the live-status events; fields Kick does not send
// stay zero, unknown fields are ignored.

type isLivePayload struct {
	Livestream struct {
		ID           kickjson.Int `json:"id"`
		ChannelID    kickjson.Int `json:"channel_id"`
		SessionTitle *string      `json:"session_title"`
		CreatedAt    string       `json:"created_at"`
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
	ID   kickjson.Int `json:"id"`
	Name string       `json:"name"`
}

type updatedPayload struct {
	Livestream struct {
		ID           kickjson.Int      `json:"id"`
		ChannelID    kickjson.Int      `json:"channel_id"`
		CreatedAt    string            `json:"created_at"`
		StartTime    string            `json:"start_time"`
		SessionTitle *string           `json:"session_title"`
		IsLive       *bool             `json:"is_live"`
		ViewerCount  *kickjson.Int     `json:"viewer_count"`
		Viewers      *kickjson.Int     `json:"viewers"`
		Category     *categoryPayload  `json:"category"`
		Categories   []categoryPayload `json:"categories"`
	} `json:"livestream"`
}

// eventKind classifies a channel event.
type eventKind int

const (
	kindIgnored eventKind = iota // protocol or other Kick events
	kindStatus                   // one of the three live-status events
)

// parseEvent maps a live-status event to an observation without the user id
// (the caller knows the channel → user map). It returns the Kick channel id
// the event is about. Other events give kindIgnored and no error.
func parseEvent(f frame) (observation.Observation, int64, eventKind, error) {
	o := observation.Observation{Kind: observation.Status}
	var chID int64
	switch f.Event {
	case EventStreamerIsLive:
		var p isLivePayload
		if err := json.Unmarshal(f.Data, &p); err != nil {
			return o, 0, kindStatus, fmt.Errorf("decode %s: %w", f.Event, err)
		}
		l := p.Livestream
		chID = int64(l.ChannelID)
		o.Live = observation.Live
		o.StartedAt = parseTime(l.CreatedAt)
		o.Provisional = true
		o.KickTime = o.StartedAt
		if l.SessionTitle != nil {
			o.HasTitle, o.Title = true, *l.SessionTitle
		}
	case EventStopStreamBroadcast:
		var p stopPayload
		if err := json.Unmarshal(f.Data, &p); err != nil {
			return o, 0, kindStatus, fmt.Errorf("decode %s: %w", f.Event, err)
		}
		chID = int64(p.Livestream.Channel.ID)
		if chID == 0 {
			chID = int64(p.Livestream.ChannelID)
		}
		o.Live = observation.Offline
	case EventLivestreamUpdated:
		var p updatedPayload
		if err := json.Unmarshal(f.Data, &p); err != nil {
			return o, 0, kindStatus, fmt.Errorf("decode %s: %w", f.Event, err)
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
			o.HasTitle, o.Title = true, *l.SessionTitle
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
			o.HasCategory, o.CategoryID, o.CategoryName = true, int64(c.ID), c.Name
		}
	default:
		return o, 0, kindIgnored, nil
	}
	if chID <= 0 {
		chID = channelIDOf(f.Channel)
	}
	if chID <= 0 {
		return o, 0, kindStatus, fmt.Errorf("%s: no channel id", f.Event)
	}
	o.ChannelID = chID
	return o, chID, kindStatus, nil
}
