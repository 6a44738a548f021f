package pusher

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
	"github.com/kickmon/kickmon/collector/internal/realtime"
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

// The live-status events, as the shared decoder names them.
const (
	EventStreamerIsLive      = realtime.EventStreamerIsLive
	EventStopStreamBroadcast = realtime.EventStopStreamBroadcast
	EventLivestreamUpdated   = realtime.EventLivestreamUpdated
)

// channelPrefix is the Pusher channel of a Kick channel: "channel.{id}".
const channelPrefix = realtime.ChannelPrefix

func channelName(channelID int64) string { return realtime.ChannelName(channelID) }

func channelIDOf(name string) int64 { return realtime.ChannelIDOf(name) }

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

// frame is one server→client message, decoded by the shared decoder.
type frame = realtime.Message

// decodeFrame parses a text frame and unwraps its data (a JSON-encoded
// string, sometimes an object). A Pusher frame holds one message.
func decodeFrame(raw []byte) (frame, error) {
	ms, err := realtime.DecodeMessages(raw)
	if err != nil {
		return frame{}, err
	}
	if len(ms) != 1 {
		return frame{}, fmt.Errorf("decode frame: %d messages in one Pusher frame", len(ms))
	}
	return ms[0], nil
}
