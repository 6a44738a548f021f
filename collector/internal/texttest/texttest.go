// Package texttest checks, in tests and fuzz targets, that text a decoder
// produced can be stored: valid UTF-8, which protobuf encodes (it refuses
// anything else in a string field, and the spool would refuse the event).
package texttest

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Check fails t for each string that is not valid UTF-8 or that protobuf
// will not encode.
func Check(t testing.TB, strs ...string) {
	t.Helper()
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("decoded text %q is not valid UTF-8", s)
		}
		if _, err := proto.Marshal(wrapperspb.String(s)); err != nil {
			t.Errorf("decoded text %q cannot be encoded: %v", s, err)
		}
	}
}
