package kickrest

import (
	"bytes"
	"errors"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
)

// The channels endpoint is decoded at every poll (2,000 bodies a minute at
// 100k streamers) and encoding/json's reflection was a sixth of a quiet
// collector's CPU. fastChannels walks the body once and hands each field's
// raw value to the same kickjson decoders the wire types use. It takes only
// the plain shape: anything else (invalid JSON, a field twice, a key in
// another case, an unexpected type, a value kickjson refuses) makes it give
// up, and DecodeChannels decodes the body the slow way, so both agree on
// every input (FuzzFastChannels).

// errSlowPath is fastChannels giving up on a body.
var errSlowPath = errors.New("not the plain shape")

// scanner walks a JSON text.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// eat consumes c, the next non-space byte, or fails.
func (s *scanner) eat(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// value consumes one valid JSON value and returns its bytes.
func (s *scanner) value(depth int) ([]byte, bool) {
	if depth > 1000 {
		return nil, false
	}
	c := s.peek()
	start := s.i
	switch {
	case c == '"':
		if !s.str() {
			return nil, false
		}
	case c == '{':
		s.i++
		if !s.eat('}') {
			for {
				if s.peek() != '"' || !s.str() || !s.eat(':') {
					return nil, false
				}
				if _, ok := s.value(depth + 1); !ok {
					return nil, false
				}
				if s.eat('}') {
					break
				}
				if !s.eat(',') {
					return nil, false
				}
			}
		}
	case c == '[':
		s.i++
		if !s.eat(']') {
			for {
				if _, ok := s.value(depth + 1); !ok {
					return nil, false
				}
				if s.eat(']') {
					break
				}
				if !s.eat(',') {
					return nil, false
				}
			}
		}
	case c == 't':
		if !s.lit("true") {
			return nil, false
		}
	case c == 'f':
		if !s.lit("false") {
			return nil, false
		}
	case c == 'n':
		if !s.lit("null") {
			return nil, false
		}
	case c == '-' || c >= '0' && c <= '9':
		if !s.num() {
			return nil, false
		}
	default:
		return nil, false
	}
	return s.b[start:s.i], true
}

func (s *scanner) lit(l string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(l)) {
		return false
	}
	s.i += len(l)
	return true
}

// str consumes a string literal (s.b[s.i] is its quote).
func (s *scanner) str() bool {
	s.i++
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	return false
}

// num consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) num() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// object calls field for each member of an object whose keys are plain
// (no escapes) and distinct; a key that matches one of names only in
// another case fails (encoding/json folds case; the slow path decides).
func (s *scanner) object(names []string, field func(key string, raw []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	var seen uint64
	for {
		if s.peek() != '"' {
			return false
		}
		start := s.i
		if !s.str() {
			return false
		}
		key := s.b[start+1 : s.i-1]
		if !plainKey(key) || !s.eat(':') {
			return false
		}
		raw, ok := s.value(1)
		if !ok {
			return false
		}
		known := -1
		for n, name := range names {
			if string(key) == name {
				known = n
			} else if bytes.EqualFold(key, []byte(name)) {
				return false
			}
		}
		if known >= 0 {
			if seen&(1<<known) != 0 {
				return false
			}
			seen |= 1 << known
			if !field(names[known], raw) {
				return false
			}
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// plainKey reports whether key is printable ASCII without escapes: other
// keys may match a field the way encoding/json folds them.
func plainKey(key []byte) bool {
	for _, c := range key {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

var (
	envelopeNames = []string{"data", "message"}
	channelNames  = []string{"broadcaster_user_id", "slug", "stream_title", "category", "stream"}
	categoryNames = []string{"id", "name", "thumbnail"}
	streamNames   = []string{"is_live", "is_mature", "language", "start_time", "viewer_count", "thumbnail", "custom_tags"}
)

// fastChannels decodes a channels body of the plain shape.
func fastChannels(body []byte) ([]Channel, error) {
	s := &scanner{b: body}
	var out []Channel
	ok := s.object(envelopeNames, func(key string, raw []byte) bool {
		if key == "message" {
			var m kickjson.String
			return m.UnmarshalJSON(raw) == nil
		}
		if string(raw) == "null" {
			return true
		}
		items := &scanner{b: raw}
		if !items.eat('[') {
			return false
		}
		out = make([]Channel, 0, MaxChannelIDs)
		if items.eat(']') {
			return true
		}
		for {
			var w wireChannel
			if items.peek() == 'n' {
				if !items.lit("null") {
					return false
				}
			} else if !items.channel(&w) {
				return false
			}
			if w.BroadcasterUserID > 0 {
				out = append(out, w.channel())
			}
			if items.eat(']') {
				return true
			}
			if !items.eat(',') {
				return false
			}
		}
	})
	if s.space(); !ok || s.i != len(s.b) {
		return nil, errSlowPath
	}
	if out == nil {
		out = []Channel{} // as decodeItems makes it
	}
	return out, nil
}

// channel decodes one item into w.
func (s *scanner) channel(w *wireChannel) bool {
	return s.object(channelNames, func(key string, raw []byte) bool {
		switch key {
		case "broadcaster_user_id":
			return w.BroadcasterUserID.UnmarshalJSON(raw) == nil
		case "slug":
			return w.Slug.UnmarshalJSON(raw) == nil
		case "stream_title":
			return w.StreamTitle.UnmarshalJSON(raw) == nil
		case "category":
			if c := raw[0]; c != '{' {
				return w.Category.UnmarshalJSON(raw) == nil // null, [] and the odd cases
			}
			cs := &scanner{b: raw}
			return cs.object(categoryNames, func(key string, raw []byte) bool {
				switch key {
				case "id":
					return w.Category.ID.UnmarshalJSON(raw) == nil
				case "name":
					return w.Category.Name.UnmarshalJSON(raw) == nil
				default:
					return w.Category.Thumbnail.UnmarshalJSON(raw) == nil
				}
			})
		default: // stream
			if string(raw) == "null" {
				w.Stream = nil
				return true
			}
			if raw[0] != '{' {
				return false
			}
			w.Stream = new(wireStream)
			st := w.Stream
			ss := &scanner{b: raw}
			return ss.object(streamNames, func(key string, raw []byte) bool {
				switch key {
				case "is_live":
					return st.IsLive.UnmarshalJSON(raw) == nil
				case "is_mature":
					return st.IsMature.UnmarshalJSON(raw) == nil
				case "language":
					return st.Language.UnmarshalJSON(raw) == nil
				case "start_time":
					return st.StartTime.UnmarshalJSON(raw) == nil
				case "viewer_count":
					return st.ViewerCount.UnmarshalJSON(raw) == nil
				case "thumbnail":
					return st.Thumbnail.UnmarshalJSON(raw) == nil
				default:
					return st.CustomTags.UnmarshalJSON(raw) == nil
				}
			})
		}
	})
}
