package kickjson

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/texttest"
)

var plus11 = time.FixedZone("", 11*3600)

func TestInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`42`, 42, true}, {`"42"`, 42, true}, {`" 42 "`, 42, true}, {`""`, 0, true}, {`null`, 0, true},
		{`4.2e1`, 42, true}, {`1e3`, 1000, true}, {`42.0`, 42, true}, {`-7`, -7, true},
		{`9007199254740993`, 9007199254740993, true}, {`"676"`, 676, true},
		{`"x"`, 0, false}, {`4.5`, 0, false}, {`true`, 0, false}, {`{}`, 0, false}, {`1e300`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var n Int
			err := json.Unmarshal([]byte(tt.in), &n)
			if (err == nil) != tt.ok || int64(n) != tt.want {
				t.Errorf("Int(%s) = %d, %v; want %d ok=%v", tt.in, n, err, tt.want, tt.ok)
			}
		})
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		in       string
		want, ok bool
	}{
		{`true`, true, true}, {`"true"`, true, true}, {`1`, true, true}, {`"1"`, true, true}, {`"TRUE"`, true, true},
		{`false`, false, true}, {`"false"`, false, true}, {`0`, false, true}, {`""`, false, true}, {`null`, false, true},
		{`"yes"`, false, false}, {`2`, false, false}, {`{}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v Bool
			err := json.Unmarshal([]byte(tt.in), &v)
			if (err == nil) != tt.ok || bool(v) != tt.want {
				t.Errorf("Bool(%s) = %v, %v; want %v ok=%v", tt.in, v, err, tt.want, tt.ok)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`"text"`, "text", true}, {`"a\"b\u00e9"`, `a"bé`, true}, {`null`, "", true}, {`""`, "", true},
		{`42`, "42", true}, {`true`, "true", true},
		{`{}`, "", false}, {`["a"]`, "", false},
		// Hostile bytes: the fast path (no escapes) is checked like the
		// slow one; NUL is dropped (PostgreSQL's text refuses it).
		{"\"a\xff\xfeb\"", "a\uFFFDb", true},
		{"\"a\xff\xfe\\u00e9\"", "a\uFFFD\uFFFDé", true}, // encoding/json replaces byte by byte
		{`"a\u0000b"`, "ab", true},
		{`"\ud800x"`, "\uFFFDx", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v String
			err := json.Unmarshal([]byte(tt.in), &v)
			if (err == nil) != tt.ok || string(v) != tt.want {
				t.Errorf("String(%s) = %q, %v; want %q ok=%v", tt.in, v, err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2025-01-01T11:00:00+11:00", time.Date(2025, 1, 1, 11, 0, 0, 0, plus11)},
		{"2026-08-02T09:00:00Z", time.Date(2026, 8, 2, 9, 0, 0, 0, time.UTC)},
		{"2024-02-06 19:10:40", time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC)},
		{"2024-02-06T19:10:40", time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC)},
		{"2024-02-06 19:10:40.5", time.Date(2024, 2, 6, 19, 10, 40, 5e8, time.UTC)},
		{"2024-02-06 20:10:40+01:00", time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC)},
		{"2025-09-15T21:12:45.000000Z", time.Date(2025, 9, 15, 21, 12, 45, 0, time.UTC)},
		{"2023-06-22T05:50:32.123456Z", time.Date(2023, 6, 22, 5, 50, 32, 123456000, time.UTC)},
		{" 2024-02-06 19:10:40 ", time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC)},
		{"0001-01-01T00:00:00Z", time.Time{}},
		{"0001-01-01T05:00:00+05:00", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in)
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"yesterday", "1707251975", "2024-02-06", "2024-13-01 00:00:00"} {
		if got, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) = %v; want an error", bad, got)
		}
	}
}

func TestTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{`"2025-01-01T11:00:00+11:00"`, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{`"2024-02-06 19:10:40"`, time.Date(2024, 2, 6, 19, 10, 40, 0, time.UTC), true},
		{`1707251975`, time.Unix(1707251975, 0), true},
		{`"0001-01-01T00:00:00Z"`, time.Time{}, true},
		{`""`, time.Time{}, true}, {`null`, time.Time{}, true}, {`0`, time.Time{}, true}, {`-5`, time.Time{}, true},
		{`"yesterday"`, time.Time{}, false}, {`"1707251975"`, time.Time{}, false}, {`1.5`, time.Time{}, false},
		{`true`, time.Time{}, false}, {`{}`, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v Time
			err := json.Unmarshal([]byte(tt.in), &v)
			if (err == nil) != tt.ok || !time.Time(v).Equal(tt.want) {
				t.Errorf("Time(%s) = %v, %v; want %v ok=%v", tt.in, time.Time(v), err, tt.want, tt.ok)
			}
		})
	}
}

// FuzzString: whatever the bytes, a string that decodes is valid UTF-8
// without NUL, and protobuf encodes it.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"text"`, "\"a\xff\xfeb\"", `"a\u0000b"`, `"\ud800"`, `12`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v String
		if err := v.UnmarshalJSON(b); err != nil {
			return
		}
		texttest.Check(t, string(v))
		if strings.IndexByte(string(v), 0) >= 0 {
			t.Errorf("decoded %q keeps a NUL", v)
		}
	})
}

// FuzzTime checks that a time either fails or parses to a time that is zero
// or after year 1, and that any Unix time round-trips as a number and as
// RFC 3339.
func FuzzTime(f *testing.F) {
	for _, s := range []string{"2025-01-01T11:00:00+11:00", "2024-02-06 19:10:40", "2025-09-15T21:12:45.000000Z", "0001-01-01T00:00:00Z", ""} {
		f.Add(s, int64(1707251975))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		if tm, err := ParseTime(s); err == nil && !tm.IsZero() && tm.Year() <= 1 {
			t.Errorf("ParseTime(%q) = %v", s, tm)
		}
		if unix <= 0 || unix > 253402300799 { // 9999-12-31
			return
		}
		want := time.Unix(unix, 0).UTC()
		var v Time
		if err := json.Unmarshal([]byte(strconv.FormatInt(unix, 10)), &v); err != nil || !time.Time(v).Equal(want) {
			t.Errorf("unix %d: %v, %v", unix, time.Time(v), err)
		}
		if got, err := ParseTime(want.Format(time.RFC3339)); err != nil || !got.Equal(want) {
			t.Errorf("RFC 3339 %v: %v, %v", want, got, err)
		}
	})
}
