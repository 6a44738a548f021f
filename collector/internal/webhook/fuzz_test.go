package webhook

import (
	"testing"

	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/texttest"
)

// FuzzVerify: only Kick's genuine test vector verifies with the documented
// key; no mutation of id, timestamp, body or signature does, and nothing
// panics.
func FuzzVerify(f *testing.F) {
	f.Add(vectorMessageID, vectorTimestamp, []byte(vectorBody), vectorSignature)
	f.Add(vectorMessageID, vectorTimestamp, []byte(vectorBody+" "), vectorSignature)
	f.Add("", "", []byte{}, "")
	f.Add(vectorMessageID+".", vectorTimestamp[1:], []byte(vectorBody), vectorSignature)
	f.Fuzz(func(t *testing.T, id, ts string, body []byte, sig string) {
		err := Verify(documentedKey, id, ts, body, sig)
		genuine := id == vectorMessageID && ts == vectorTimestamp && string(body) == vectorBody
		if err == nil && !genuine {
			t.Fatalf("forged delivery verifies: id %q ts %q body %q", id, ts, body)
		}
	})
}

// FuzzDecode: any body decodes without panicking; a decoded observation
// names a streamer and says what it is.
func FuzzDecode(f *testing.F) {
	for _, tt := range []struct{ event, body string }{
		{EventStatusUpdated, vectorBody},
		{EventStatusUpdated, `{"broadcaster":{"user_id":"7","identity":null},"is_live":false,"ended_at":"2025-01-01T15:00:00+11:00"}`},
		{EventMetadataUpdated, `{"broadcaster":{"user_id":123},"metadata":{"title":"t","category":{"id":"9","name":"x"}}}`},
		{"chat.message.sent", `{}`},
	} {
		f.Add(tt.event, []byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		o, ok, err := Decode(event, body)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if o.UserID <= 0 {
			t.Fatalf("observation without a user: %+v", o)
		}
		if event == EventStatusUpdated && o.Live == observation.LiveUnknown {
			t.Fatalf("status without liveness: %+v", o)
		}
		texttest.Check(t, o.Slug, o.Title, o.CategoryName, o.Reason)
	})
}
