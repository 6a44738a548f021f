package backoff

import (
	"context"
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

func TestFor(t *testing.T) {
	tests := []struct {
		class    Class
		interval time.Duration
		want     Policy
	}{
		{Transient, 2 * time.Second, Policy{time.Second, 30 * time.Second}},
		{Transient, time.Minute, Policy{time.Second, time.Minute}},
		{Transient, 0, Policy{time.Second, 30 * time.Second}},
		{RateLimited, time.Minute, Policy{time.Second, 30 * time.Second}},
		{Blocked, 2 * time.Second, Policy{30 * time.Second, 30 * time.Minute}},
		{Local, time.Minute, Policy{100 * time.Millisecond, 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%v", tt.class, tt.interval), func(t *testing.T) {
			if got := For(tt.class, tt.interval); got != tt.want {
				t.Errorf("For = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestBackoffResetsAfterAStablePeriod: a success resets the count only
// once it has lasted StableAfter; a flapping peer keeps backing off.
func TestBackoffResetsAfterAStablePeriod(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	b := Backoff{Policy: Policy{Base: time.Second, Max: time.Minute}, StableAfter: 10 * time.Second}
	for i := range 3 {
		b.Failed(t0.Add(time.Duration(i) * time.Second))
	}
	b.Succeeded(t0.Add(5 * time.Second))
	b.Failed(t0.Add(6 * time.Second)) // up 1 s: not stable
	if b.Attempts() != 4 {
		t.Errorf("after a short success: %d attempts, want 4", b.Attempts())
	}
	b.Succeeded(t0.Add(7 * time.Second))
	b.Succeeded(t0.Add(8 * time.Second)) // still the same stretch
	if d := b.Failed(t0.Add(17 * time.Second)); d > time.Second || b.Attempts() != 1 {
		t.Errorf("after a stable success: wait %v, %d attempts; want ≤1s, 1", d, b.Attempts())
	}
	now := Backoff{Policy: Policy{Base: time.Second, Max: time.Minute}}
	now.Failed(t0)
	now.Failed(t0)
	now.Succeeded(t0)
	if now.Attempts() != 0 {
		t.Errorf("StableAfter 0: %d attempts after a success, want 0", now.Attempts())
	}
}

func TestAIMD(t *testing.T) {
	a := NewAIMD(60)
	if got := a.Decrease(); got != 30 {
		t.Errorf("first decrease = %v, want 30", got)
	}
	for range 20 {
		a.Decrease()
	}
	if got := a.Rate(); got != 60.0/8 {
		t.Errorf("floor = %v, want %v", got, 60.0/8)
	}
	for range 30 {
		a.Increase()
	}
	if got := a.Rate(); got != 60 {
		t.Errorf("after many successes = %v, want the full 60", got)
	}
	a.Decrease()
	if got := a.Increase(); got != 33 {
		t.Errorf("one success after a decrease = %v, want 30+3", got)
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !Sleep(ctx, time.Millisecond) {
		t.Error("Sleep with a live context = false")
	}
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with a cancelled context = true")
	}
}
