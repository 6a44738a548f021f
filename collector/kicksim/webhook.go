package kicksim

import (
	"bytes"
	"container/heap"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Webhook event names (kick-api.md §1.10.3). kicksim delivers the two
// livestream events; the others can be subscribed to but never fire.
const (
	WebhookStatusUpdated   = "livestream.status.updated"
	WebhookMetadataUpdated = "livestream.metadata.updated"
)

var knownEvents = map[string]bool{
	"chat.message.sent": true, "channel.followed": true, "channel.subscription.renewal": true,
	"channel.subscription.gifts": true, "channel.subscription.new": true,
	"channel.reward.redemption.updated": true, WebhookStatusUpdated: true, WebhookMetadataUpdated: true,
	"moderation.banned": true, "kicks.gifted": true,
}

// Webhook headers (kick-api.md §1.10.5).
const (
	HeaderMessageID      = "Kick-Event-Message-Id"
	HeaderSubscriptionID = "Kick-Event-Subscription-Id"
	HeaderSignature      = "Kick-Event-Signature"
	HeaderTimestamp      = "Kick-Event-Message-Timestamp"
	HeaderEventType      = "Kick-Event-Type"
	HeaderEventVersion   = "Kick-Event-Version"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulidFrom renders a ULID: 48 bits of Unix milliseconds and 80 random bits,
// 26 characters of Crockford base32.
func ulidFrom(t time.Time, r *mrand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	binary.BigEndian.PutUint16(b[6:], uint16(r.Uint32()))
	return encodeULID(t, b)
}

func newULID(t time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	return encodeULID(t, b)
}

func encodeULID(t time.Time, b [16]byte) string {
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// uuidFor renders a stable version-4-looking UUID for n.
func uuidFor(n int64) string {
	a, b := splitmix(uint64(n)), splitmix(uint64(n)^0x5bd1e995)
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0x3fff|0x8000, b&0xffffffffffff)
}

// WebhookSubscription is one events/subscriptions entry.
type WebhookSubscription struct {
	ID                string
	BroadcasterUserID int64
	Event             string
	Version           int
	CreatedAt         time.Time
}

// apiSubscription is an item of GET /public/v1/events/subscriptions
// (kick-api.md §1.10.2, spec example order).
type apiSubscription struct {
	AppID             string `json:"app_id"`
	BroadcasterUserID int64  `json:"broadcaster_user_id"`
	CreatedAt         string `json:"created_at"`
	Event             string `json:"event"`
	ID                string `json:"id"`
	Method            string `json:"method"`
	UpdatedAt         string `json:"updated_at"`
	Version           int    `json:"version"`
}

// WebhookStats counts webhook deliveries.
type WebhookStats struct {
	Queued     int64 // messages created for a subscription
	Attempts   int64 // HTTP POSTs made
	Delivered  int64 // POSTs answered 2xx
	Failed     int64 // POSTs that failed or were answered otherwise
	Duplicated int64 // extra deliveries of an already delivered message
	Dropped    int64 // messages given up (retries exhausted, queue full, no URL)
}

type delivery struct {
	due       time.Time
	userID    int64
	subID     string
	msgID     string
	timestamp string
	event     string
	body      []byte
	sig       string
	attempt   int
	dup       bool
}

type deliveryHeap []*delivery

func (h deliveryHeap) Len() int           { return len(h) }
func (h deliveryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h deliveryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deliveryHeap) Push(x any)        { *h = append(*h, x.(*delivery)) }
func (h *deliveryHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return d
}

const (
	webhookWorkers     = 4
	webhookMaxAttempts = 4
)

// webhooks holds the subscriptions and delivers messages.
type webhooks struct {
	s      *Sim
	appID  string
	client *http.Client

	mu     sync.Mutex
	byID   map[string]*WebhookSubscription
	byUser map[int64][]*WebhookSubscription
	url    string

	qmu   sync.Mutex
	queue deliveryHeap
	rng   *mrand.Rand // guarded by qmu
	wake  chan struct{}
	// work has one queue per worker; a broadcaster's deliveries always go to
	// the same worker, so they arrive in order unless delayed or retried.
	work []chan *delivery

	queued, attempts, delivered, failed, duplicated, dropped atomic.Int64
}

func newWebhooks(s *Sim) *webhooks {
	r := mrand.New(mrand.NewPCG(uint64(s.o.seed), 0x776562686f6f6b))
	return &webhooks{
		s:      s,
		appID:  ulidFrom(time.Date(2025, 3, 25, 0, 0, 1, 0, time.UTC), r),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: webhookWorkers}},
		byID:   make(map[string]*WebhookSubscription),
		byUser: make(map[int64][]*WebhookSubscription),
		url:    s.o.webhookURL,
		rng:    r,
		wake:   make(chan struct{}, 1),
		work:   make([]chan *delivery, webhookWorkers),
	}
}

func (h *webhooks) start() {
	h.s.wg.Add(1 + webhookWorkers)
	go h.dispatch()
	for i := range h.work {
		h.work[i] = make(chan *delivery)
		go h.worker(h.work[i])
	}
}

func (h *webhooks) stop() {
	h.client.CloseIdleConnections()
}

func (h *webhooks) subscribe(userID int64, event string, version int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sub := range h.byUser[userID] {
		if sub.Event == event && sub.Version == version {
			return sub.ID // subscribing twice returns the existing subscription
		}
	}
	now := h.s.o.now()
	sub := &WebhookSubscription{ID: newULID(now), BroadcasterUserID: userID, Event: event, Version: version, CreatedAt: now.UTC().Truncate(time.Second)}
	h.byID[sub.ID] = sub
	h.byUser[userID] = append(h.byUser[userID], sub)
	return sub.ID
}

func (h *webhooks) unsubscribe(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		sub, ok := h.byID[id]
		if !ok {
			continue
		}
		delete(h.byID, id)
		list := h.byUser[sub.BroadcasterUserID]
		for i, x := range list {
			if x == sub {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(h.byUser, sub.BroadcasterUserID)
		} else {
			h.byUser[sub.BroadcasterUserID] = list
		}
	}
}

func (h *webhooks) all() []WebhookSubscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]WebhookSubscription, 0, len(h.byID))
	for _, sub := range h.byID {
		out = append(out, *sub)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (h *webhooks) list(userID int64) []apiSubscription {
	out := make([]apiSubscription, 0)
	for _, sub := range h.all() {
		if userID != 0 && sub.BroadcasterUserID != userID {
			continue
		}
		ts := sub.CreatedAt.Format(time.RFC3339)
		out = append(out, apiSubscription{AppID: h.appID, BroadcasterUserID: sub.BroadcasterUserID, CreatedAt: ts, Event: sub.Event, ID: sub.ID, Method: "webhook", UpdatedAt: ts, Version: sub.Version})
	}
	return out
}

// Webhook payloads (kick-api.md §1.10.4), shaped like the real delivered
// ValidationPayload.json: no identity key, is_verified null.
type whBroadcaster struct {
	IsAnonymous    bool   `json:"is_anonymous"`
	UserID         int64  `json:"user_id"`
	Username       string `json:"username"`
	IsVerified     *bool  `json:"is_verified"`
	ProfilePicture string `json:"profile_picture"`
	ChannelSlug    string `json:"channel_slug"`
}

type whStatus struct {
	Broadcaster whBroadcaster `json:"broadcaster"`
	IsLive      bool          `json:"is_live"`
	Title       string        `json:"title"`
	StartedAt   string        `json:"started_at"`
	EndedAt     *string       `json:"ended_at"`
}

type whMetadata struct {
	Broadcaster whBroadcaster `json:"broadcaster"`
	Metadata    struct {
		Title            string      `json:"title"`
		Language         string      `json:"language"`
		HasMatureContent bool        `json:"has_mature_content"`
		Category         apiCategory `json:"category"`
	} `json:"metadata"`
}

// emit queues webhook messages for a change. It runs under the world lock:
// it only builds the body; signing happens in the workers.
func (h *webhooks) emit(c change) {
	var event string
	switch {
	case c.kind == changeLive || c.kind == changeOffline:
		event = WebhookStatusUpdated
	case c.metadata:
		event = WebhookMetadataUpdated
	default:
		return
	}
	h.mu.Lock()
	url := h.url
	var subs []string
	for _, sub := range h.byUser[c.s.UserID] {
		if sub.Event == event {
			subs = append(subs, sub.ID)
		}
	}
	h.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	st := &streamer{Streamer: c.s}
	b := whBroadcaster{UserID: st.UserID, Username: st.Username, ProfilePicture: profilePicture(st), ChannelSlug: st.Slug}
	var body []byte
	if event == WebhookStatusUpdated {
		p := whStatus{Broadcaster: b, IsLive: c.kind == changeLive, Title: st.Title, StartedAt: officialTime(st.StartedAt, st.Zone)}
		if c.kind == changeOffline {
			e := officialTime(c.endedAt, st.Zone)
			p.EndedAt = &e
		}
		body = marshal(p)
	} else {
		p := whMetadata{Broadcaster: b}
		p.Metadata.Title, p.Metadata.Language, p.Metadata.HasMatureContent = st.Title, st.Language, st.Mature
		p.Metadata.Category = categoryOf(st)
		body = marshal(p)
	}
	now := h.s.o.now()
	for _, id := range subs {
		h.queued.Add(1)
		if url == "" {
			h.dropped.Add(1)
			continue
		}
		h.schedule(&delivery{userID: st.UserID, subID: id, msgID: newULID(now), timestamp: now.UTC().Format(time.RFC3339), event: event, body: body}, h.jitter(h.s.o.webhookDelay))
	}
}

// jitter returns a random delay in [0, maxDelay].
func (h *webhooks) jitter(maxDelay time.Duration) time.Duration {
	if maxDelay <= 0 {
		return 0
	}
	h.qmu.Lock()
	defer h.qmu.Unlock()
	return time.Duration(h.rng.Int64N(int64(maxDelay) + 1))
}

// schedule queues d for delivery after delay; a full queue drops it.
func (h *webhooks) schedule(d *delivery, delay time.Duration) {
	h.qmu.Lock()
	if len(h.queue) >= h.s.o.webhookQueue {
		h.qmu.Unlock()
		h.dropped.Add(1)
		return
	}
	d.due = time.Now().Add(delay)
	heap.Push(&h.queue, d)
	h.qmu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *webhooks) dispatch() {
	defer h.s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		h.qmu.Lock()
		var next *delivery
		wait := time.Hour
		if len(h.queue) > 0 {
			if d := time.Until(h.queue[0].due); d <= 0 {
				next = heap.Pop(&h.queue).(*delivery)
			} else {
				wait = d
			}
		}
		h.qmu.Unlock()
		if next != nil {
			select {
			case h.work[uint64(next.userID)%webhookWorkers] <- next:
			case <-h.s.ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-h.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-h.s.ctx.Done():
			return
		}
	}
}

func (h *webhooks) worker(work <-chan *delivery) {
	defer h.s.wg.Done()
	for {
		select {
		case d := <-work:
			h.deliver(d)
		case <-h.s.ctx.Done():
			return
		}
	}
}

func (h *webhooks) sign(d *delivery) string {
	sum := sha256.Sum256([]byte(d.msgID + "." + d.timestamp + "." + string(d.body)))
	sig, err := rsa.SignPKCS1v15(nil, h.s.o.key, crypto.SHA256, sum[:])
	if err != nil {
		panic("kicksim: sign webhook: " + err.Error()) // a valid key always signs
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func (h *webhooks) deliver(d *delivery) {
	h.mu.Lock()
	url := h.url
	_, subscribed := h.byID[d.subID]
	h.mu.Unlock()
	if url == "" || !subscribed && d.attempt == 0 && !d.dup { // unsubscribed before the first try
		h.dropped.Add(1)
		return
	}
	if d.sig == "" {
		d.sig = h.sign(d)
	}
	h.attempts.Add(1)
	err := h.post(url, d)
	if err == nil {
		h.delivered.Add(1)
		h.qmu.Lock()
		dup := !d.dup && h.s.o.webhookDup > 0 && h.rng.Float64() < h.s.o.webhookDup
		h.qmu.Unlock()
		if dup {
			h.duplicated.Add(1)
			c := *d
			c.dup = true
			h.schedule(&c, 10*time.Millisecond+h.jitter(h.s.o.webhookDelay))
		}
		return
	}
	h.failed.Add(1)
	h.s.log.Debug("webhook delivery failed", logErr, err, "attempt", d.attempt+1)
	d.attempt++
	if d.attempt >= webhookMaxAttempts || h.s.ctx.Err() != nil {
		h.dropped.Add(1)
		return
	}
	h.schedule(d, h.s.o.webhookRetryBase<<(d.attempt-1))
}

func (h *webhooks) post(url string, d *delivery) error {
	ctx, cancel := context.WithTimeout(h.s.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	hd := req.Header
	hd.Set("Content-Type", "application/json")
	hd.Set(HeaderMessageID, d.msgID)
	hd.Set(HeaderSubscriptionID, d.subID)
	hd.Set(HeaderSignature, d.sig)
	hd.Set(HeaderTimestamp, d.timestamp)
	hd.Set(HeaderEventType, d.event)
	hd.Set(HeaderEventVersion, "1")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: status %d", resp.StatusCode)
	}
	return nil
}

// SetWebhookURL changes where webhooks are delivered ("" stops deliveries).
func (s *Sim) SetWebhookURL(url string) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.url = url
}

// WebhookSubscriptions lists the current webhook subscriptions.
func (s *Sim) WebhookSubscriptions() []WebhookSubscription { return s.hooks.all() }

// DropWebhookSubscriptions removes every webhook subscription, as Kick does
// when an app's endpoint keeps failing ("auto-unsubscribed").
func (s *Sim) DropWebhookSubscriptions() {
	s.log.Info("dropping all webhook subscriptions")
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	clear(s.hooks.byID)
	clear(s.hooks.byUser)
}

// WebhookStats returns the delivery counters.
func (s *Sim) WebhookStats() WebhookStats {
	h := s.hooks
	return WebhookStats{Queued: h.queued.Load(), Attempts: h.attempts.Load(), Delivered: h.delivered.Load(),
		Failed: h.failed.Load(), Duplicated: h.duplicated.Load(), Dropped: h.dropped.Load()}
}

// AppID is the id of the sim's app (app_id of subscriptions).
func (s *Sim) AppID() string { return s.hooks.appID }
