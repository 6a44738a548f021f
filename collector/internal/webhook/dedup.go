package webhook

import (
	"container/list"
	"sync"
	"time"
)

// dedup remembers message ids for ttl, at most size of them (the oldest go
// first). An id is claimed before its message is processed and released
// if processing fails, so concurrent duplicates are processed once and a
// failed message can be retried.
type dedup struct {
	size int
	ttl  time.Duration

	mu    sync.Mutex
	order *list.List               // of entry, oldest first
	byID  map[string]*list.Element // id → its element
}

type entry struct {
	id string
	at time.Time
}

func newDedup(size int, ttl time.Duration) *dedup {
	return &dedup{size: size, ttl: ttl, order: list.New(), byID: make(map[string]*list.Element)}
}

// claim records id and reports true, or reports false when id was seen
// within ttl.
func (d *dedup) claim(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e := d.order.Front(); e != nil; e = d.order.Front() {
		if en := e.Value.(entry); now.Sub(en.at) < d.ttl && d.order.Len() <= d.size {
			break
		}
		d.remove(e)
	}
	if _, seen := d.byID[id]; seen {
		return false
	}
	d.byID[id] = d.order.PushBack(entry{id: id, at: now})
	if d.order.Len() > d.size {
		d.remove(d.order.Front())
	}
	return true
}

// release forgets id (its processing failed; a redelivery must be accepted).
func (d *dedup) release(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.byID[id]; ok {
		d.remove(e)
	}
}

func (d *dedup) remove(e *list.Element) {
	delete(d.byID, e.Value.(entry).id)
	d.order.Remove(e)
}

func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
