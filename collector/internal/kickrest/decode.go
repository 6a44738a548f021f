package kickrest

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
)

// Kick's payloads drift (kick-api.md §4.6); the wire types decode with
// kickjson's lenient scalars. Unknown fields are ignored by encoding/json.

// wireCategory is a category object; null and [] mean none.
type wireCategory struct {
	ID        kickjson.Int    `json:"id"`
	Name      kickjson.String `json:"name"`
	Thumbnail kickjson.String `json:"thumbnail"`
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
	var raw []kickjson.String
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*v = nil
	if len(raw) > 0 {
		*v = make([]string, len(raw))
		for i, s := range raw {
			(*v)[i] = string(s)
		}
	}
	return nil
}

// envelope is api.kick.com's {"data":…,"message":…}.
type envelope[T any] struct {
	Data    T               `json:"data"`
	Message kickjson.String `json:"message"`
}

// decodeItems decodes an envelope whose data is an array of W and converts
// each item, keeping those conv accepts.
func decodeItems[W, T any](body []byte, conv func(W) (T, bool)) ([]T, error) {
	// Room for a whole batch up front: json grows a slice from 1.
	env := envelope[[]W]{Data: make([]W, 0, MaxChannelIDs)}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	items := env.Data
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
