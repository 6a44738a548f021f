// Package backoff computes the wait before a retry: exponential backoff
// with full jitter, so that clients failing together do not retry together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Jitter returns the wait before retry number attempt (0 for the first):
// uniform in [0, min(limit, base·2^attempt)].
func Jitter(base, limit time.Duration, attempt int) time.Duration {
	return rand.N(ceiling(base, limit, attempt) + 1)
}

// ceiling is min(limit, base·2^attempt), without overflowing.
func ceiling(base, limit time.Duration, attempt int) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	if attempt < 63 && base <= limit>>attempt {
		return base << attempt
	}
	return limit
}
