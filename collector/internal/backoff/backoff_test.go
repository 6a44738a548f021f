package backoff

import (
	"fmt"
	"testing"
	"time"
)

func TestCeiling(t *testing.T) {
	tests := []struct {
		base, limit time.Duration
		attempt     int
		want        time.Duration
	}{
		{time.Second, 2 * time.Minute, 0, time.Second},
		{time.Second, 2 * time.Minute, 1, 2 * time.Second},
		{time.Second, 2 * time.Minute, 6, 64 * time.Second},
		{time.Second, 2 * time.Minute, 7, 2 * time.Minute},
		{time.Second, 2 * time.Minute, 62, 2 * time.Minute},
		{time.Second, 2 * time.Minute, 1000, 2 * time.Minute},
		{time.Hour, 1 << 62, 40, 1 << 62}, // base·2^40 overflows
		{time.Second, 2 * time.Minute, -1, time.Second},
		{time.Second, 0, 3, 0},
		{20 * time.Millisecond, 200 * time.Millisecond, 3, 160 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%v/%d", tt.base, tt.limit, tt.attempt), func(t *testing.T) {
			if got := ceiling(tt.base, tt.limit, tt.attempt); got != tt.want {
				t.Errorf("ceiling = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJitterStaysWithinTheCeiling(t *testing.T) {
	for attempt := range 10 {
		hi := ceiling(time.Millisecond, time.Second, attempt)
		for range 200 {
			if d := Jitter(time.Millisecond, time.Second, attempt); d < 0 || d > hi {
				t.Fatalf("Jitter(attempt %d) = %v, want within [0, %v]", attempt, d, hi)
			}
		}
	}
	if d := Jitter(time.Second, 0, 5); d != 0 {
		t.Errorf("Jitter with a zero limit = %v, want 0", d)
	}
}
