// Package kickjson decodes Kick's JSON leniently (kick-api.md §4.6):
// numbers that arrive as strings, booleans as 1/"true", strings as numbers,
// and Kick's several time formats. "Nothing" (null, "", Go's zero time)
// decodes to the zero value. The REST client, the Pusher feed and the
// webhook receiver all decode with these types.
package kickjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// unquote returns the text of a JSON string literal as Text: literals
// without escapes take the fast path, which is checked like the slow one.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		return Text(string(b[1 : len(b)-1])), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return Text(s), err
}

// Text returns s as valid UTF-8 (each run of invalid bytes becomes U+FFFD)
// without NUL bytes (an escaped \u0000 is valid JSON, but PostgreSQL's text
// refuses it). Every string kickjson decodes goes through it: protobuf
// refuses to encode invalid UTF-8, so one such title from Kick would
// otherwise stop the collector at each poll.
func Text(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

// Int is an integer that may arrive as a JSON number (also 1.0 or 1e3), a
// numeric string, an empty string or null.
type Int int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*n = 0
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		var err error
		if s, err = unquote(b); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = 0
			return nil
		}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = Int(i)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return fmt.Errorf("not an integer: %.40q", s)
	}
	*n = Int(f)
	return nil
}

// Bool is a boolean that may arrive as true/false, "true"/"false", 1/0,
// "1"/"0", an empty string or null.
type Bool bool

// UnmarshalJSON implements json.Unmarshaler. It allocates nothing on
// success: a poll round decodes 100k of them.
func (v *Bool) UnmarshalJSON(b []byte) error {
	t := bytes.Trim(bytes.TrimSpace(b), `"`)
	switch {
	case bytes.EqualFold(t, []byte("true")), string(t) == "1":
		*v = true
	case bytes.EqualFold(t, []byte("false")), string(t) == "0", len(t) == 0, bytes.EqualFold(t, []byte("null")):
		*v = false
	default:
		return fmt.Errorf("not a boolean: %.40q", t)
	}
	return nil
}

// String is a string that may arrive as null or as a number or boolean
// (rendered as its JSON text).
type String string

// UnmarshalJSON implements json.Unmarshaler.
func (v *String) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*v = ""
	case len(b) > 0 && b[0] == '"':
		s, err := unquote(b)
		if err != nil {
			return err
		}
		*v = String(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return errors.New("not a string")
	default:
		*v = String(Text(string(b)))
	}
	return nil
}

// timeLayouts are the date formats Kick uses (kick-api.md §1.5, §2.4):
// RFC 3339 with an offset or Z, with or without fractions, and the
// Laravel "2024-02-06 19:10:40" (UTC).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05Z07:00",
}

// ParseTime parses a Kick time in any of its formats, keeping the offset it
// carries. "" and Go's zero time (what the channels API sends for an
// offline stream) give the zero time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if t.IsZero() || t.Year() <= 1 {
				return time.Time{}, nil
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %.40q", s)
}

// Time is a time that may arrive as a string in any format ParseTime
// accepts, as a Unix time in seconds, or as null.
type Time time.Time

// UnmarshalJSON implements json.Unmarshaler.
func (v *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*v = Time{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		s, err := unquote(b)
		if err != nil {
			return err
		}
		t, err := ParseTime(s)
		if err != nil {
			return err
		}
		*v = Time(t)
		return nil
	}
	var n Int
	if err := n.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("not a time: %.40q", b)
	}
	if n <= 0 {
		*v = Time{}
		return nil
	}
	*v = Time(time.Unix(int64(n), 0).UTC())
	return nil
}
