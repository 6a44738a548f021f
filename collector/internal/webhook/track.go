package webhook

import (
	"strings"
	"sync"
	"time"
)

// CapMessage is how Kick words its refusal when the app has as many event
// subscriptions as it may (KickDevDocs #227, #243: about 2,000).
const CapMessage = "event subscription limit reached"

// Status is the state of the webhook subscriptions, as the Repairer last
// saw them (WebhookStatus).
type Status struct {
	// Subscribed and Unsubscribed count the watched streamers with and
	// without every event subscription.
	Subscribed, Unsubscribed int64
	// Dropped counts subscriptions that disappeared from Kick's list
	// (auto-unsubscribed after a day of failed deliveries, or webhooks
	// switched off in the app's settings) since the collector started.
	Dropped int64
	// CapReached: Kick refused a subscription for its limit; no more are
	// asked for until the watch list is shorter than when it happened.
	CapReached bool
	LastError  string
	LastRepair time.Time
}

// tracker keeps the Status between repairs.
type tracker struct {
	mu    sync.Mutex
	st    Status
	known map[key]bool // subscriptions seen in Kick's list or created
	capAt int          // watch-list length when the cap was hit (0: not hit)
}

// dropped is one subscription Kick removed.
type dropped struct {
	user  int64
	event string
}

// listed compares Kick's list with the subscriptions seen before and
// returns those Kick dropped for streamers still watched.
func (t *tracker) listed(have map[key]bool, watched []int64) []dropped {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := make(map[int64]bool, len(watched))
	for _, id := range watched {
		w[id] = true
	}
	var out []dropped
	for k := range t.known {
		if !have[k] {
			delete(t.known, k)
			if w[k.user] {
				out = append(out, dropped(k))
			}
		}
	}
	t.st.Dropped += int64(len(out))
	return out
}

// capped reports whether the cap still holds for a watch list of n.
func (t *tracker) capped(n int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.capAt != 0 && n < t.capAt {
		t.capAt, t.st.CapReached = 0, false // the list shrank: try again
	}
	return t.capAt != 0
}

// capIn records the cap when msg is Kick's limit refusal.
func (t *tracker) capIn(msg string, n int) bool {
	if !strings.Contains(strings.ToLower(msg), CapMessage) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.capAt, t.st.CapReached = max(n, 1), true
	return true
}

// repaired records the outcome of a repair: have holds every subscription
// now known to exist.
func (t *tracker) repaired(have map[key]bool, watched []int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.known == nil {
		t.known = make(map[key]bool)
	}
	for k := range have {
		t.known[k] = true
	}
	t.st.Subscribed, t.st.Unsubscribed = 0, 0
	for _, id := range watched {
		all := true
		for _, ev := range Events {
			all = all && have[key{id, ev.Name}]
		}
		if all {
			t.st.Subscribed++
		} else {
			t.st.Unsubscribed++
		}
	}
	t.st.LastRepair = time.Now()
	switch {
	case err != nil:
		t.st.LastError = err.Error()
	case t.capAt != 0:
		t.st.LastError = CapMessage + ": not subscribing more streamers until some are removed"
	default:
		t.st.LastError = ""
	}
}

// Status returns the state of the subscriptions after the last repair.
func (r *Repairer) Status() Status {
	r.track.mu.Lock()
	defer r.track.mu.Unlock()
	return r.track.st
}
