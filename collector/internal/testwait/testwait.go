// Package testwait lets tests wait for a condition with a deadline instead
// of sleeping for a fixed time.
package testwait

import (
	"testing"
	"time"
)

// interval is how often For checks the condition: short enough to catch
// brief states (a rate-limited health during a 429 storm).
const interval = 2 * time.Millisecond

// For calls cond until it returns true, and fails t (Fatalf, so only from
// the test's goroutine) when it has not after timeout.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
