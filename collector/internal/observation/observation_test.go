package observation

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "hello", 10, "hello"},
		{"invalid bytes", "a\xff\xfeb", 10, "a\uFFFDb"},
		{"NUL removed", "a\x00b\x00", 10, "ab"},
		{"cut at the cap", "abcdef", 4, "abcd"},
		{"cut on a rune boundary", "ab€", 4, "ab"}, // € is 3 bytes
		{"cap after cleaning", "\xff\xff\xffabc", 4, "\uFFFDa"},
		{"zero cap", "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Clean(tt.in, tt.max)
			if got != tt.want || !utf8.ValidString(got) || len(got) > tt.max {
				t.Errorf("Clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestSanitized(t *testing.T) {
	o := Observation{
		UserID: 7, Slug: "sl\x00ug", Title: "t\xff\xfe" + strings.Repeat("x", 2*MaxTitleBytes),
		CategoryName: strings.Repeat("é", MaxCategoryBytes), Reason: "r\xc3",
	}
	got := o.Sanitized()
	if got.Slug != "slug" || got.Reason != "r\uFFFD" || got.UserID != 7 {
		t.Errorf("Sanitized = %+v", got)
	}
	for name, f := range map[string]struct {
		s   string
		max int
	}{"title": {got.Title, MaxTitleBytes}, "category": {got.CategoryName, MaxCategoryBytes}} {
		if !utf8.ValidString(f.s) || len(f.s) > f.max || len(f.s) < f.max-utf8.UTFMax {
			t.Errorf("%s: %d bytes (cap %d), valid %v", name, len(f.s), f.max, utf8.ValidString(f.s))
		}
	}
	// A thumbnail URL is never cut (a cut URL points elsewhere): too long, it
	// is dropped.
	for _, c := range []struct{ in, want string }{
		{"https://img.test/a\x00b.webp", "https://img.test/ab.webp"},
		{"https://img.test/" + strings.Repeat("a", MaxURLBytes), ""},
	} {
		if got := (Observation{Thumbnail: c.in}).Sanitized().Thumbnail; got != c.want {
			t.Errorf("Sanitized thumbnail %.40q = %.40q, want %q", c.in, got, c.want)
		}
	}
}
