package kickrest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kick's payloads drift (kick-api.md §4.6): numbers sometimes arrive as
// strings, dates in several formats, empty objects as null or as PHP's
// empty array. The flex types below accept every shape seen in the wild and
// map "nothing" (null, "", 0001-01-01) to the zero value. Unknown fields are
// ignored by encoding/json.

// unquote returns the text of a JSON string literal; literals without
// escapes take the fast path.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// flexInt is an integer that may arrive as a JSON number (also 1.0 or 1e3),
// a numeric string, an empty string or null.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
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
		*n = flexInt(i)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return fmt.Errorf("not an integer: %.40q", s)
	}
	*n = flexInt(f)
	return nil
}

// flexBool is a boolean that may arrive as true/false, "true"/"false",
// 1/0, "1"/"0", an empty string or null.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1":
		*v = true
	case "false", "0", "", "null":
		*v = false
	default:
		return fmt.Errorf("not a boolean: %.40q", s)
	}
	return nil
}

// flexString is a string that may arrive as null or as a number or
// boolean (rendered as its JSON text).
type flexString string

func (v *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*v = ""
	case len(b) > 0 && b[0] == '"':
		s, err := unquote(b)
		if err != nil {
			return err
		}
		*v = flexString(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return errors.New("not a string")
	default:
		*v = flexString(b)
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

// parseTime parses a Kick time. "" and Go's zero time (what the channels
// API sends for an offline stream) give the zero time.
func parseTime(s string) (time.Time, error) {
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

// flexTime is a time in any of timeLayouts, a Unix time in seconds, an
// empty string or null.
type flexTime time.Time

func (v *flexTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*v = flexTime{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		s, err := unquote(b)
		if err != nil {
			return err
		}
		t, err := parseTime(s)
		if err != nil {
			return err
		}
		*v = flexTime(t)
		return nil
	}
	var n flexInt
	if err := n.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("not a time: %.40q", b)
	}
	if n <= 0 {
		*v = flexTime{}
		return nil
	}
	*v = flexTime(time.Unix(int64(n), 0).UTC())
	return nil
}

// wireCategory is a category object; null and [] mean none.
type wireCategory struct {
	ID        flexInt    `json:"id"`
	Name      flexString `json:"name"`
	Thumbnail flexString `json:"thumbnail"`
}

func (c *wireCategory) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" || len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if string(b) != "null" {
			if err := json.Unmarshal(b, &arr); err != nil {
				return err
			}
			if len(arr) > 0 {
				return errors.New("category: want an object, got a non-empty array")
			}
		}
		*c = wireCategory{}
		return nil
	}
	type plain wireCategory
	return json.Unmarshal(b, (*plain)(c))
}

func (c wireCategory) category() Category {
	return Category{ID: int64(c.ID), Name: string(c.Name), Thumbnail: string(c.Thumbnail)}
}

// flexStrings is a list of strings; null and a missing field give nil.
// Non-string items (numbers) are rendered as their JSON text.
type flexStrings []string

func (v *flexStrings) UnmarshalJSON(b []byte) error {
	var raw []flexString
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*v = nil
	for _, s := range raw {
		*v = append(*v, string(s))
	}
	return nil
}

// envelope is api.kick.com's {"data":…,"message":…}.
type envelope[T any] struct {
	Data    T          `json:"data"`
	Message flexString `json:"message"`
}

// decodeItems decodes an envelope whose data is an array of W and converts
// each item, keeping those conv accepts.
func decodeItems[W, T any](body []byte, conv func(W) (T, bool)) ([]T, error) {
	items, err := decodeData[[]W](body)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, w := range items {
		if t, ok := conv(w); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// decodeData decodes the data of an envelope.
func decodeData[T any](body []byte) (T, error) {
	var env envelope[T]
	err := json.Unmarshal(body, &env)
	return env.Data, err
}
