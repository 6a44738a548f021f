// Package batch is the writer's pure batching logic: a Batcher that
// accumulates events and decides when to flush (size, interval, group
// commit), and Coalesce, which turns a run of events into at most one row
// change per key so that one multi-row statement never touches a row twice.
// Nothing here talks to a database or a clock; callers pass the time.
package batch

import (
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Batcher accumulates events between flushes. It is not safe for
// concurrent use: one loop owns it.
//
// Group commit: a flush is due when Size events are pending or the oldest
// pending event has waited Interval. The owner starts at most one flush at a
// time; events arriving meanwhile keep accumulating, and the next Take hands
// over all of them up to Max, so the batch size grows with the load instead
// of the size trigger capping throughput.
type Batcher struct {
	size     int
	max      int
	interval time.Duration

	pending []*kickmonv1.Event
	oldest  time.Time // when the oldest pending event (or skip) arrived
	skipTo  uint64    // every seq up to skipTo is known lost; 0 if none
}

// New returns a Batcher flushing at size events or after interval, taking at
// most maxEvents events per flush.
func New(size, maxEvents int, interval time.Duration) *Batcher {
	maxEvents = max(maxEvents, 1)
	return &Batcher{size: min(max(size, 1), maxEvents), max: maxEvents, interval: interval}
}

// Pending is what one flush writes.
type Pending struct {
	// Events are the events to write, in arrival (seq) order.
	Events []*kickmonv1.Event
	// SkipTo, when not 0, says every seq up to it that is not in Events was
	// lost (the collector's spool dropped it): record a gap and move the
	// cursor past it.
	SkipTo uint64
}

// Empty reports whether p writes nothing.
func (p Pending) Empty() bool { return len(p.Events) == 0 && p.SkipTo == 0 }

// Last is the highest seq p accounts for.
func (p Pending) Last() uint64 {
	last := p.SkipTo
	if n := len(p.Events); n > 0 {
		last = max(last, p.Events[n-1].GetSeq())
	}
	return last
}

// Add appends events received at now.
func (b *Batcher) Add(now time.Time, events ...*kickmonv1.Event) {
	if len(events) == 0 {
		return
	}
	b.touch(now)
	b.pending = append(b.pending, events...)
}

// SkipTo records that every seq up to seq that has not arrived is lost. It
// must be called after the events before the loss were added.
func (b *Batcher) SkipTo(now time.Time, seq uint64) {
	b.touch(now)
	b.skipTo = max(b.skipTo, seq)
}

func (b *Batcher) touch(now time.Time) {
	if len(b.pending) == 0 && b.skipTo == 0 {
		b.oldest = now
	}
}

// Len is the number of pending events.
func (b *Batcher) Len() int { return len(b.pending) }

// Full reports whether the owner should stop receiving until a flush
// frees room: several flushes' worth of events are already waiting.
func (b *Batcher) Full() bool { return len(b.pending) >= 4*b.max }

// Due returns when the interval trigger fires for what is pending, and
// false when nothing is pending.
func (b *Batcher) Due() (time.Time, bool) {
	if len(b.pending) == 0 && b.skipTo == 0 {
		return time.Time{}, false
	}
	return b.oldest.Add(b.interval), true
}

// Ready reports whether a flush is due at now: Size events pending, a loss
// to record, or the oldest pending event has waited the interval.
func (b *Batcher) Ready(now time.Time) bool {
	due, ok := b.Due()
	return ok && (len(b.pending) >= b.size || b.skipTo != 0 || !now.Before(due))
}

// Take removes and returns up to Max pending events (and the recorded loss
// once no event before it remains). The rest stays pending, now considered
// as old as at Take's now so that it flushes right after.
func (b *Batcher) Take(now time.Time) Pending {
	n := min(len(b.pending), b.max)
	p := Pending{Events: b.pending[:n:n]}
	b.pending = b.pending[n:]
	if len(b.pending) == 0 {
		p.SkipTo, b.skipTo = b.skipTo, 0
		b.pending = nil
	} else {
		b.oldest = now.Add(-b.interval)
	}
	return p
}
