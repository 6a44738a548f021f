// Package backoff is kickmon's one retry policy, used by every loop that
// retries (the poller, the Pusher and webhook repair loops, the writer's
// consumer, the viewer's feed, kickapi's reconnects): exponential backoff
// with full jitter (clients failing together do not retry together), a
// cap, and a reset once things have worked for a stable period. What
// differs is the class of the failure, not who wrote the loop:
//
//   - Transient (5xx, network, a peer restarting): from 1 s, capped at the
//     loop's own interval but at least 30 s, so a loop is back within one
//     interval (or 30 s) of its peer.
//   - RateLimited (429): the wait stays short; the caller lowers its request
//     rate instead (AIMD: halve on each 429, add back a twentieth of the
//     full rate on each success), never an ever-longer pause.
//   - Blocked (a Cloudflare 403 or challenge page): from 30 s up to 30 min;
//     hammering a block makes it last.
//   - Local (a daemon on this machine restarting: the collector's socket):
//     from 100 ms, capped at 5 s, so clients are back as soon as it is.
package backoff

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Class is what kind of failure a retry follows.
type Class int

const (
	// Transient: 5xx, network errors, a peer restarting.
	Transient Class = iota
	// RateLimited: 429, the app's request rate is too high.
	RateLimited
	// Blocked: a Cloudflare 403 or challenge page.
	Blocked
	// Local: a daemon on this machine (the collector's socket) restarting.
	Local
)

// Caps of the classes.
const (
	// MinTransientMax is the least cap of Transient waits.
	MinTransientMax = 30 * time.Second
	// BlockedBase and BlockedMax bound Blocked waits.
	BlockedBase = 30 * time.Second
	BlockedMax  = 30 * time.Minute
)

// Policy is the shape of the waits: full jitter in [0, min(Max, Base·2^n)]
// before retry n (0 for the first).
type Policy struct {
	Base, Max time.Duration
}

// For is the policy of class c for a loop that normally acts every
// interval (0 when it has none).
func For(c Class, interval time.Duration) Policy {
	transient := Policy{Base: time.Second, Max: max(interval, MinTransientMax)}
	switch c {
	case Local:
		return Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	case Blocked:
		return Policy{Base: BlockedBase, Max: BlockedMax}
	case RateLimited:
		// The rate comes down (AIMD); the pause only spreads the retries.
		return Policy{Base: time.Second, Max: min(transient.Max, MinTransientMax)}
	}
	return transient
}

// Wait returns the wait before retry number attempt.
func (p Policy) Wait(attempt int) time.Duration {
	return Jitter(p.Base, p.Max, attempt)
}

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

// Backoff counts the consecutive failures of one loop. A success resets
// the count once it has lasted StableAfter (at once when 0), so a peer
// that accepts and then drops every connection still backs off.
type Backoff struct {
	Policy
	StableAfter time.Duration

	attempt int
	okSince time.Time // zero while failing
}

// Failed records a failure at now and returns the wait before the next
// try.
func (b *Backoff) Failed(now time.Time) time.Duration {
	if !b.okSince.IsZero() && now.Sub(b.okSince) >= b.StableAfter {
		b.attempt = 0
	}
	b.okSince = time.Time{}
	d := b.Wait(b.attempt)
	b.attempt++
	return d
}

// Succeeded records a success at now (a request answered, a connection
// made). The count resets at once when StableAfter is 0, else at the next
// failure if the success lasted that long.
func (b *Backoff) Succeeded(now time.Time) {
	if b.okSince.IsZero() {
		b.okSince = now
	}
	if b.StableAfter <= 0 {
		b.attempt = 0
	}
}

// Attempts is the number of consecutive failures counted.
func (b *Backoff) Attempts() int { return b.attempt }

// Sleep waits d, or until ctx ends (then false).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// AIMD is a request rate that halves on each rate-limit answer and climbs
// back by a twentieth of the full rate on each success (additive increase,
// multiplicative decrease, as TCP does), never below an eighth of the full rate. It is safe
// for concurrent use.
type AIMD struct {
	mu   sync.Mutex
	full float64
	now  float64
}

// NewAIMD starts at the full rate (requests per second, or any unit).
func NewAIMD(full float64) *AIMD { return &AIMD{full: full, now: full} }

// Decrease halves the rate (a 429) and returns it.
func (a *AIMD) Decrease() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = max(a.now/2, a.full/8)
	return a.now
}

// Increase adds a twentieth of the full rate, up to it (a success), and
// returns the rate.
func (a *AIMD) Increase() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = min(a.now+a.full/20, a.full)
	return a.now
}

// Full is the rate it climbs back to.
func (a *AIMD) Full() float64 { return a.full }

// Rate is the current rate.
func (a *AIMD) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now
}
