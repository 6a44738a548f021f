package pusher

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Real frames from kick-api.md §2.4 (the StreamerIsLive frame is built from
// the captured payload as the document shows).
const (
	frameIsLive  = `{"event":"App\\Events\\StreamerIsLive","data":"{\"livestream\":{\"id\":74454116,\"channel_id\":668,\"session_title\":\"👏LIVE👏CLICK👏\",\"source\":null,\"created_at\":\"2025-09-15T21:12:45.000000Z\"}}","channel":"channel.668"}`
	frameStop    = `{"event":"App\\Events\\StopStreamBroadcast","data":"{\"livestream\":{\"id\":74409800,\"channel\":{\"id\":2587387,\"is_banned\":false}}}","channel":"channel.2587387"}`
	frameUpdated = `{"event":"App\\Events\\LivestreamUpdated","data":"{\"livestream\":{\"id\":22976949,\"slug\":\"99850629-55-start\",\"channel_id\":2515504,\"created_at\":\"2024-02-06 19:10:40\",\"session_title\":\"$55 start\",\"is_live\":true,\"risk_level_id\":null,\"start_time\":\"2024-02-06 19:10:37\",\"source\":null,\"twitch_channel\":null,\"duration\":0,\"language\":\"English\",\"is_mature\":true,\"viewer_count\":949,\"category\":{\"id\":28,\"category_id\":4,\"name\":\"Slots & Casino\",\"slug\":\"slots\"},\"categories\":[]}}","channel":"private-livestream.22976949"}`
	frameFollow  = `{"event":"App\\Events\\FollowersUpdated","data":"{\"followersCount\":20947,\"channel_id\":2515504,\"username\":null,\"created_at\":1707251975,\"followed\":true}","channel":"channel.2515504"}`
	framePinned  = `{"event":"App\\Events\\PinnedMessageDeletedEvent","data":"[]","channel":"chatrooms.2507974.v2"}`
	frameSubOK   = `{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"channel.668"}`
	frameEstabl  = `{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}`
	frameError   = `{"event":"pusher:error","data":{"code":4001,"message":"App key not in this cluster"}}`
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		raw, event, channel, data string
	}{
		{frameEstabl, evConnectionEstablished, "", `{"socket_id":"123.456","activity_timeout":120}`},
		{frameSubOK, evSubscriptionSucceeded, "channel.668", `{}`},
		{frameError, evError, "", `{"code":4001,"message":"App key not in this cluster"}`},
		{framePinned, `App\Events\PinnedMessageDeletedEvent`, "chatrooms.2507974.v2", `[]`},
		{`{"event":"pusher:pong"}`, evPong, "", ``},
		{`{"event":"pusher:pong","data":null}`, evPong, "", ``},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			f, err := decodeFrame([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{f.Event, f.Channel, string(f.Data)}
			if diff := cmp.Diff([3]string{tt.event, tt.channel, tt.data}, got); diff != "" {
				t.Errorf("frame (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{``, `{`, `[]`, `{"data":"{}"}`, `{"event":"x","data":"\"unterminated}`, frameSubOK + "\n" + frameSubOK} {
		if _, err := decodeFrame([]byte(bad)); err == nil {
			t.Errorf("decodeFrame(%q) succeeded; want an error", bad)
		}
	}
}

// FuzzDecodeFrame feeds arbitrary frames to the Pusher frame decoder: it
// must never panic, and a frame that decodes has an event.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{frameIsLive, frameStop, frameUpdated, frameFollow, framePinned, frameSubOK, frameEstabl, frameError} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := decodeFrame(raw)
		if err == nil && fr.Event == "" {
			t.Fatal("decoded a frame without an event")
		}
	})
}

func TestChannelsIn(t *testing.T) {
	tests := []struct {
		msg  string
		want []int64
	}{
		{"Subscription to channel.668 is not allowed", []int64{668}},
		{"Subscription to channel.668.", []int64{668}},
		{"channel.1, channel.22; (channel.333)", []int64{1, 22, 333}},
		{"Auth value for subscription to private-channel.5 is invalid", nil},
		{"channel.5x channel.6.v2 channel. channel.0 chatrooms.7", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, channelsIn(tt.msg)); diff != "" {
				t.Errorf("channelsIn(%q) (-want +got):\n%s", tt.msg, diff)
			}
		})
	}
}

func TestRefusalText(t *testing.T) {
	tests := []struct{ data, want string }{
		{`{"type":"AuthError","error":"Invalid signature","status":403}`, "Invalid signature (403)"},
		{`{"type":"AuthError","message":"Unauthorized"}`, "Unauthorized"},
		{`{"type":"LimitReached"}`, "LimitReached"},
		{`[]`, "pusher:subscription_error"},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			if got := refusalText([]byte(tt.data)); got != tt.want {
				t.Errorf("refusalText(%s) = %q; want %q", tt.data, got, tt.want)
			}
		})
	}
}
