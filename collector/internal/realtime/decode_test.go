package realtime

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/texttest"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Real messages from kick-api.md §2.4 (Pusher frames; the StreamerIsLive
// frame is built from the captured payload as the document shows) and
// §2.7 (Centrifugo publication data: the same events, data a string or an
// object).
const (
	msgIsLive     = `{"event":"App\\Events\\StreamerIsLive","data":"{\"livestream\":{\"id\":74454116,\"channel_id\":668,\"session_title\":\"👏LIVE👏CLICK👏\",\"source\":null,\"created_at\":\"2025-09-15T21:12:45.000000Z\"}}","channel":"channel.668"}`
	msgStop       = `{"event":"App\\Events\\StopStreamBroadcast","data":"{\"livestream\":{\"id\":74409800,\"channel\":{\"id\":2587387,\"is_banned\":false}}}","channel":"channel.2587387"}`
	msgUpdated    = `{"event":"App\\Events\\LivestreamUpdated","data":"{\"livestream\":{\"id\":22976949,\"slug\":\"99850629-55-start\",\"channel_id\":2515504,\"created_at\":\"2024-02-06 19:10:40\",\"session_title\":\"$55 start\",\"is_live\":true,\"risk_level_id\":null,\"start_time\":\"2024-02-06 19:10:37\",\"source\":null,\"twitch_channel\":null,\"duration\":0,\"language\":\"English\",\"is_mature\":true,\"viewer_count\":949,\"category\":{\"id\":28,\"category_id\":4,\"name\":\"Slots & Casino\",\"slug\":\"slots\"},\"categories\":[]}}","channel":"private-livestream.22976949"}`
	msgFollow     = `{"event":"App\\Events\\FollowersUpdated","data":"{\"followersCount\":20947,\"channel_id\":2515504,\"username\":null,\"created_at\":1707251975,\"followed\":true}","channel":"channel.2515504"}`
	centIsLiveObj = `{"event":"App\\Events\\StreamerIsLive","data":{"livestream":{"id":1,"channel_id":668,"session_title":"obj","created_at":"2025-09-15T21:12:45Z"}}}`
	centIsLiveStr = `{"event":"App\\Events\\StreamerIsLive","data":"{\"livestream\":{\"id\":1,\"channel_id\":668,\"session_title\":\"str\",\"created_at\":\"2025-09-15T21:12:45Z\"}}"}`
)

func TestDecodeMessages(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []Message
	}{
		{"data as a JSON string", centIsLiveStr, []Message{{Event: EventStreamerIsLive, Data: []byte(`{"livestream":{"id":1,"channel_id":668,"session_title":"str","created_at":"2025-09-15T21:12:45Z"}}`)}}},
		{"data as an object", centIsLiveObj, []Message{{Event: EventStreamerIsLive, Data: []byte(`{"livestream":{"id":1,"channel_id":668,"session_title":"obj","created_at":"2025-09-15T21:12:45Z"}}`)}}},
		{"several messages in one frame", centIsLiveObj + "\n" + `{"event":"pusher:pong"}` + "\n", []Message{
			{Event: EventStreamerIsLive, Data: []byte(`{"livestream":{"id":1,"channel_id":668,"session_title":"obj","created_at":"2025-09-15T21:12:45Z"}}`)},
			{Event: "pusher:pong"},
		}},
		{"null data", `{"event":"x","data":null,"channel":"c"}`, []Message{{Event: "x", Channel: "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMessages([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{``, ` `, `{`, `[]`, `{"data":"{}"}`, `{"event":"x","data":"\"unterminated}`, `{"event":"x"} {"data":1}`} {
		if _, err := DecodeMessages([]byte(bad)); err == nil {
			t.Errorf("DecodeMessages(%q) succeeded; want an error", bad)
		}
	}
}

func TestParse(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	title := func(s string) observation.Observation {
		return observation.Observation{HasTitle: true, Title: s}
	}
	live := func(title string) observation.Observation {
		o := observation.Observation{HasTitle: true, Title: title}
		o.Live, o.StartedAt, o.KickTime, o.Provisional = observation.Live, at("2025-09-15T21:12:45Z"), at("2025-09-15T21:12:45Z"), true
		return o
	}
	tests := []struct {
		name    string
		raw     string
		kind    Kind
		channel int64
		want    observation.Observation
		wantErr bool
	}{
		{name: "StreamerIsLive", raw: msgIsLive, kind: KindStatus, channel: 668, want: live("👏LIVE👏CLICK👏")},
		{name: "Centrifugo StreamerIsLive, data an object", raw: centIsLiveObj, kind: KindStatus, channel: 668, want: live("obj")},
		{name: "Centrifugo StreamerIsLive, data a string", raw: centIsLiveStr, kind: KindStatus, channel: 668, want: live("str")},
		{name: "StopStreamBroadcast nests the channel id", raw: msgStop, kind: KindStatus, channel: 2587387, want: observation.Observation{Live: observation.Offline}},
		{name: "LivestreamUpdated legacy dates", raw: msgUpdated, kind: KindStatus, channel: 2515504, want: func() observation.Observation {
			o := title("$55 start")
			o.Live, o.StartedAt, o.Provisional = observation.Live, at("2024-02-06T19:10:37Z"), true
			o.HasViewers, o.Viewers = true, 949
			o.HasCategory, o.CategoryID, o.CategoryName = true, 28, "Slots & Casino"
			return o
		}()},
		{name: "LivestreamUpdated not live, numbers as strings", raw: `{"event":"App\\Events\\LivestreamUpdated","channel":"channel.9","data":{"livestream":{"channel_id":"9","is_live":false,"viewers":"12"}}}`,
			kind: KindStatus, channel: 9, want: observation.Observation{Live: observation.Offline, HasViewers: true, Viewers: 12}},
		{name: "invalid UTF-8 in a title becomes U+FFFD", raw: "{\"event\":\"App\\\\Events\\\\StreamerIsLive\",\"data\":{\"livestream\":{\"channel_id\":5,\"session_title\":\"a\xffb\",\"created_at\":\"2025-09-15T21:12:45Z\"}}}",
			kind: KindStatus, channel: 5, want: live("a\uFFFDb")},
		{name: "channel id from the channel name", raw: `{"event":"App\\Events\\StopStreamBroadcast","channel":"channel.77","data":"{\"livestream\":{\"id\":1}}"}`,
			kind: KindStatus, channel: 77, want: observation.Observation{Live: observation.Offline}},
		{name: "no channel id at all", raw: `{"event":"App\\Events\\StopStreamBroadcast","channel":"x","data":"{}"}`, kind: KindStatus, wantErr: true},
		{name: "payload of the wrong shape", raw: `{"event":"App\\Events\\StreamerIsLive","channel":"channel.1","data":"[]"}`, kind: KindStatus, wantErr: true},
		{name: "other Kick event", raw: msgFollow, kind: KindIgnored},
		{name: "event without namespace", raw: `{"event":"GiftedSubscriptionsEvent","data":"{}","channel":"channel.1"}`, kind: KindIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := DecodeMessages([]byte(tt.raw))
			if err != nil || len(ms) != 1 {
				t.Fatalf("DecodeMessages: %d messages, %v", len(ms), err)
			}
			o, ch, kind, err := Parse(ms[0])
			if kind != tt.kind {
				t.Errorf("kind %v; want %v", kind, tt.kind)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v; want error %v", err, tt.wantErr)
			}
			if tt.wantErr || kind == KindIgnored {
				return
			}
			if ch != tt.channel {
				t.Errorf("channel %d; want %d", ch, tt.channel)
			}
			tt.want.Kind, tt.want.ChannelID = observation.Status, tt.channel
			if diff := cmp.Diff(tt.want, o); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeliver checks the counting shared by both providers: status events
// of subscribed channels become observations with the provider's source;
// other events are ignored, unknown channels unmatched, bad ones counted.
func TestDeliver(t *testing.T) {
	users := map[int64]int64{668: 42}
	userOf := func(ch int64) (int64, bool) { u, ok := users[ch]; return u, ok }
	var c Counters
	frame := centIsLiveObj + "\n" + msgFollow + "\n" + msgStop + "\n" + `{"event":"App\\Events\\StreamerIsLive","data":"[]"}`
	ms, err := DecodeMessages([]byte(frame))
	if err != nil || len(ms) != 4 {
		t.Fatalf("DecodeMessages: %d messages, %v", len(ms), err)
	}
	var got []observation.Observation
	for _, m := range ms {
		if o, ok, _ := c.Deliver(m, Centrifugo, userOf); ok {
			got = append(got, o)
		}
	}
	if len(got) != 1 || got[0].UserID != 42 || got[0].Source != kickmonv1.Source_SOURCE_CENTRIFUGO || got[0].ObservedAt.IsZero() {
		t.Fatalf("observations %+v; want one for user 42 from Centrifugo", got)
	}
	want := Stats{Observations: 1, Ignored: 1, Unmatched: 1, BadFrames: 1}
	if diff := cmp.Diff(want, c.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// FuzzDecode feeds arbitrary frames to the shared decoder and the event
// mapper: they must never panic, every string they return is valid UTF-8
// that protobuf encodes, and a status event that decodes names a channel.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{msgIsLive, msgStop, msgUpdated, msgFollow, centIsLiveObj, centIsLiveStr, centIsLiveObj + "\n" + msgStop,
		"{\"event\":\"App\\\\Events\\\\LivestreamUpdated\",\"data\":{\"livestream\":{\"channel_id\":1,\"is_live\":true,\"session_title\":\"\xc3\",\"category\":{\"name\":\"\xff\"}}}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ms, _ := DecodeMessages(raw)
		for _, m := range ms {
			if m.Event == "" {
				t.Fatal("decoded a message without an event")
			}
			o, ch, kind, err := Parse(m)
			if kind != KindStatus || err != nil {
				continue
			}
			if ch <= 0 || o.ChannelID != ch {
				t.Fatalf("status event with channel %d, observation channel %d", ch, o.ChannelID)
			}
			if m.Event != EventLivestreamUpdated && o.Live == observation.LiveUnknown {
				t.Fatalf("%s without liveness", m.Event)
			}
			texttest.Check(t, o.Title, o.CategoryName)
		}
	})
}

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC)
	for _, s := range []string{"2024-02-06 19:10:40", "2024-02-06T19:10:40.000000Z", "2024-02-06T20:10:40+01:00", " 2024-02-06T19:10:40Z "} {
		if got := parseTime(s); !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v; want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "yesterday", "1707251975"} {
		if got := parseTime(s); !got.IsZero() {
			t.Errorf("parseTime(%q) = %v; want zero", s, got)
		}
	}
}

func TestChannelName(t *testing.T) {
	if got := ChannelName(668); got != "channel.668" || ChannelIDOf(got) != 668 {
		t.Errorf("ChannelName(668) = %q, back %d", got, ChannelIDOf(got))
	}
	for _, s := range []string{"channel.", "channel.x", "channel.-1", "chatrooms.1.v2", strings.Repeat("9", 30)} {
		if id := ChannelIDOf(s); id != 0 {
			t.Errorf("ChannelIDOf(%q) = %d; want 0", s, id)
		}
	}
}
