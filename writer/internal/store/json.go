package store

import (
	"strconv"
	"time"
	"unicode/utf8"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A hand-written encoder for the messages stored as jsonb. Its output is
// what protojson produces with UseProtoNames (int64 as strings, enums by
// name, RFC 3339 timestamps, unset fields omitted) — a test holds it to
// that — at a fraction of the cost: protojson was a third of a flush.

type jsonObj struct {
	b     []byte
	first bool
}

func newObj(b []byte) *jsonObj { return &jsonObj{b: append(b, '{'), first: true} }

func (o *jsonObj) key(k string) {
	if !o.first {
		o.b = append(o.b, ',')
	}
	o.first = false
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *jsonObj) str(k, v string) {
	if v != "" {
		o.key(k)
		o.b = appendJSONString(o.b, v)
	}
}

func (o *jsonObj) int64(k string, v int64) {
	if v != 0 {
		o.key(k)
		o.b = append(o.b, '"')
		o.b = strconv.AppendInt(o.b, v, 10)
		o.b = append(o.b, '"')
	}
}

func (o *jsonObj) bool(k string, v bool) {
	if v {
		o.key(k)
		o.b = append(o.b, "true"...)
	}
}

func (o *jsonObj) enum(k string, v int32, name string) {
	if v != 0 {
		o.key(k)
		o.b = appendJSONString(o.b, name)
	}
}

func (o *jsonObj) ts(k string, t *timestamppb.Timestamp) {
	if t != nil {
		o.key(k)
		o.b = appendTimestamp(o.b, t)
	}
}

func (o *jsonObj) end() []byte { return append(o.b, '}') }

func appendTimestamp(b []byte, t *timestamppb.Timestamp) []byte {
	tm := time.Unix(t.GetSeconds(), 0).UTC()
	b = append(b, '"')
	b = tm.AppendFormat(b, "2006-01-02T15:04:05")
	if n := t.GetNanos(); n != 0 {
		digits := 9
		switch {
		case n%1e6 == 0:
			n, digits = n/1e6, 3
		case n%1e3 == 0:
			n, digits = n/1e3, 6
		}
		s := strconv.Itoa(int(n))
		b = append(b, '.')
		for range digits - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return append(b, 'Z', '"')
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(b, '"')
}

func appendCoverage(b []byte, c *kickmonv1.Coverage) []byte {
	o := newObj(b)
	o.enum("source", int32(c.GetSource()), c.GetSource().String())
	o.bool("blind", c.GetBlind())
	o.str("reason", c.GetReason())
	o.ts("since", c.GetSince())
	o.ts("last_confirmed_at", c.GetLastConfirmedAt())
	return o.end()
}

func appendSession(b []byte, s *kickmonv1.Session) []byte {
	o := newObj(b)
	o.str("session_id", s.GetSessionId())
	o.ts("started_at", s.GetStartedAt())
	o.bool("started_at_provisional", s.GetStartedAtProvisional())
	o.ts("ended_at", s.GetEndedAt())
	o.str("title", s.GetTitle())
	o.str("category_name", s.GetCategoryName())
	o.int64("peak_viewers", s.GetPeakViewers())
	o.enum("detected_by", int32(s.GetDetectedBy()), s.GetDetectedBy().String())
	o.bool("observed_late", s.GetObservedLate())
	return o.end()
}

func appendStreamer(b []byte, st *kickmonv1.Streamer) []byte {
	o := newObj(b)
	o.int64("broadcaster_user_id", st.GetBroadcasterUserId())
	o.str("slug", st.GetSlug())
	o.int64("channel_id", st.GetChannelId())
	o.enum("state", int32(st.GetState()), st.GetState().String())
	o.str("title", st.GetTitle())
	o.int64("category_id", st.GetCategoryId())
	o.str("category_name", st.GetCategoryName())
	o.int64("viewer_count", st.GetViewerCount())
	o.ts("live_since", st.GetLiveSince())
	if s := st.GetSession(); s != nil {
		o.key("session")
		o.b = appendSession(o.b, s)
	}
	o.ts("last_confirmed_at", st.GetLastConfirmedAt())
	if cs := st.GetCoverage(); len(cs) > 0 {
		o.key("coverage")
		o.b = appendCoverages(o.b, cs)
	}
	o.ts("added_at", st.GetAddedAt())
	o.bool("removed", st.GetRemoved())
	o.str("thumbnail_url", st.GetThumbnailUrl())
	return o.end()
}

func appendCoverages(b []byte, cs []*kickmonv1.Coverage) []byte {
	b = append(b, '[')
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCoverage(b, c)
	}
	return append(b, ']')
}
