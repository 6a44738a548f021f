package kicksim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Transition kinds recorded in the ground truth (Transition.Kind).
const (
	KindLive     = "live"     // the streamer went live (a new session)
	KindOffline  = "offline"  // the streamer's session ended
	KindTitle    = "title"    // the title changed
	KindCategory = "category" // the category changed
	KindViewers  = "viewers"  // the viewer count changed
	KindRename   = "rename"   // the slug changed (OldSlug → Slug)
	KindBan      = "ban"      // the channel was banned (after an offline transition if it was live)
)

// Errors returned by the world's mutators.
var (
	ErrUnknownStreamer = errors.New("kicksim: unknown streamer")
	ErrBanned          = errors.New("kicksim: streamer is banned")
	ErrAlreadyLive     = errors.New("kicksim: streamer is already live")
	ErrNotLive         = errors.New("kicksim: streamer is not live")
	ErrSlugTaken       = errors.New("kicksim: slug is taken")
	ErrInvalidSlug     = errors.New("kicksim: invalid slug")
	ErrUnknownCategory = errors.New("kicksim: unknown category")
)

// Streamer is a snapshot of one simulated streamer.
//
// UserID is Kick's user id (the official broadcaster_user_id), ChannelID is
// the id of the Pusher channel "channel.{ChannelID}", ChatroomID the chatroom
// id. The three are distinct, and no id of one kind equals an id of another
// kind anywhere in the world, so a client that mixes them up sees nothing.
type Streamer struct {
	UserID       int64  `json:"user_id"`
	ChannelID    int64  `json:"channel_id"`
	ChatroomID   int64  `json:"chatroom_id"`
	Slug         string `json:"slug"`
	Username     string `json:"username"`
	Live         bool   `json:"live"`
	Title        string `json:"title"`
	CategoryID   int64  `json:"category_id"`
	CategoryName string `json:"category_name"`
	Viewers      int    `json:"viewers"`
	Language     string `json:"language"` // ISO code as in the official API ("en")
	Mature       bool   `json:"mature"`
	Banned       bool   `json:"banned"`
	// StartedAt is the official start of the current session (second
	// precision): stream.start_time of the channels API, started_at of the
	// livestreams API and of webhooks. Zero when offline.
	StartedAt time.Time `json:"started_at"`
	// PusherCreatedAt is created_at of the Pusher StreamerIsLive event. It is
	// deliberately 1–3 s after StartedAt (Kick records the livestream a moment
	// after the ingest starts; the real 2024 LivestreamUpdated frame of
	// kick-api.md §2.4 has start_time 19:10:37 and created_at 19:10:40).
	PusherCreatedAt time.Time `json:"pusher_created_at,omitzero"`
	// LivestreamID is the id of the current (or last) livestream, as in
	// Pusher events.
	LivestreamID int64 `json:"livestream_id"`
	// Zone is the offset used to render official times for this streamer:
	// UTC ("Z") for most, +11:00 for every fourth one, as in Kick's spec
	// examples. The instant is the same; clients must compare instants.
	Zone *time.Location `json:"-"`
}

// Transition is one entry of the ground truth: a change the simulator made.
type Transition struct {
	Seq       int64     `json:"seq"` // 1, 2, … in order of the changes
	Kind      string    `json:"kind"`
	UserID    int64     `json:"user_id"`
	ChannelID int64     `json:"channel_id"`
	Slug      string    `json:"slug"`               // slug after the change
	OldSlug   string    `json:"old_slug,omitempty"` // KindRename only
	At        time.Time `json:"at"`
	// StartedAt is the official start time of the session the transition
	// belongs to (live, offline and updates while live).
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at,omitzero"`          // KindOffline only: the official end time
	PusherCreatedAt time.Time `json:"pusher_created_at,omitzero"` // KindLive only
	LivestreamID    int64     `json:"livestream_id"`
	Title           string    `json:"title"`
	CategoryID      int64     `json:"category_id"`
	CategoryName    string    `json:"category_name"`
	Viewers         int       `json:"viewers"`
	Banned          bool      `json:"banned"`
	// Initial marks the live sessions the world started with (At is the
	// world's creation time, StartedAt the session's start in the past).
	Initial bool `json:"initial,omitempty"`
}

// Category is a Kick category.
type Category struct {
	ID        int64
	Name      string
	Slug      string
	Thumbnail string
	ParentID  int64
	Tags      []string
}

// categories are real Kick categories (ids and names as seen in Kick payloads
// where known).
var categories = []Category{
	{ID: 15, Name: "Just Chatting", Slug: "just-chatting", ParentID: 2, Tags: []string{"IRL"}},
	{ID: 28, Name: "Slots & Casino", Slug: "slots", ParentID: 4, Tags: []string{"Gambling"}},
	{ID: 754, Name: "Call of Duty: Warzone", Slug: "call-of-duty-warzone", ParentID: 1, Tags: []string{"FPS"}},
	{ID: 8549, Name: "Grand Theft Auto V", Slug: "grand-theft-auto-v", ParentID: 1, Tags: []string{"Action"}},
	{ID: 5, Name: "Counter-Strike 2", Slug: "counter-strike-2", ParentID: 1, Tags: []string{"FPS"}},
	{ID: 9, Name: "Science & Technology", Slug: "science-technology", ParentID: 2, Tags: []string{"Education"}},
	{ID: 22, Name: "Pools, Hot Tubs & Bikinis", Slug: "pools-hot-tubs-bikinis", ParentID: 2, Tags: []string{"IRL"}},
	{ID: 10087, Name: "Minecraft", Slug: "minecraft", ParentID: 1, Tags: []string{"Sandbox"}},
	{ID: 13, Name: "Music", Slug: "music", ParentID: 2, Tags: []string{"Music"}},
	{ID: 8718, Name: "League of Legends", Slug: "league-of-legends", ParentID: 1, Tags: []string{"MOBA"}},
}

func categoryByID(id int64) (Category, bool) {
	for _, c := range categories {
		if c.ID == id {
			return c, true
		}
	}
	return Category{}, false
}

func (c Category) thumbnail() string {
	return "https://files.kick.com/images/subcategories/" + strconv.FormatInt(c.ID, 10) + "/banner/conversion/banner-medium.webp"
}

var languageNames = map[string]string{"en": "English", "es": "Spanish", "pt": "Portuguese", "de": "German", "fr": "French"}

func languageName(code string) string {
	if n, ok := languageNames[code]; ok {
		return n
	}
	return "English"
}

var (
	slugWordsA = []string{"sleepy", "cozy", "loud", "tiny", "mega", "lucky", "salty", "spicy", "chill", "hyper", "silent", "golden", "rapid", "frosty", "neon", "lazy", "brave", "witty", "grumpy", "royal"}
	slugWordsB = []string{"otter", "fox", "gamer", "wolf", "panda", "tiger", "raven", "ninja", "pirate", "wizard", "falcon", "moose", "badger", "shark", "lynx", "cobra", "koala", "viking", "yeti", "dragon"}
	titleWords = []string{"LIVE", "chill stream", "ranked grind", "late night", "just chatting", "road to top 500", "bonus hunt", "drama news", "first playthrough", "subathon", "IRL", "speedrun attempts"}
)

// streamer is the world's mutable record of one streamer.
type streamer struct {
	Streamer
	idx       int
	lastEnded time.Time // official end of the previous session
}

// changeKind tells the emitter what happened.
type changeKind int

const (
	changeLive changeKind = iota + 1
	changeOffline
	changeUpdate   // title, category or viewers
	changeMetadata // title or category (also changeUpdate when live)
	changeNoise
)

// change is handed to the emitter while the world lock is held, so emitted
// events are in the order of the changes.
type change struct {
	kind     changeKind
	s        Streamer
	endedAt  time.Time
	metadata bool // title or category changed (webhook livestream.metadata.updated)
	noise    int
}

// world is the deterministic set of streamers and the ground-truth log.
type world struct {
	mu        sync.RWMutex
	list      []*streamer
	byUser    map[int64]*streamer
	byChannel map[int64]*streamer
	bySlug    map[string]*streamer
	live      map[int64]*streamer
	truth     []Transition
	truthMax  int
	seq       int64
	nextLSID  int64
	rng       *rand.Rand // guarded by mu
	emit      func(change)
	now       func() time.Time
}

func newWorld(n int, seed int64, liveFraction float64, truthMax int, now func() time.Time) *world {
	w := &world{
		list:      make([]*streamer, 0, n),
		byUser:    make(map[int64]*streamer, n),
		byChannel: make(map[int64]*streamer, n),
		bySlug:    make(map[string]*streamer, n),
		live:      make(map[int64]*streamer),
		truthMax:  truthMax,
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x6b69636b73696d)),
		nextLSID:  74_000_000,
		emit:      func(change) {},
		now:       now,
	}
	utc11 := time.FixedZone("+11:00", 11*3600)
	start := now()
	for i := 0; i < n; i++ {
		// Ids by residue mod 16: channel 0..3, chatroom 4..7, user 8..11,
		// so no id of one kind ever equals an id of another kind.
		base := int64(2_500_000 + 16*i)
		s := &streamer{idx: i}
		s.ChannelID = base + int64(w.rng.IntN(4))
		s.ChatroomID = base - 16*500 + 4 + int64(w.rng.IntN(4))
		s.UserID = base + 16*3400 + 8 + int64(w.rng.IntN(4))
		for {
			slug := slugWordsA[w.rng.IntN(len(slugWordsA))] + "-" + slugWordsB[w.rng.IntN(len(slugWordsB))] + strconv.Itoa(w.rng.IntN(100000))
			if _, taken := w.bySlug[slug]; !taken {
				s.Slug = slug
				break
			}
		}
		s.Username = s.Slug
		cat := categories[w.rng.IntN(len(categories))]
		s.CategoryID, s.CategoryName = cat.ID, cat.Name
		s.Title = w.randomTitle()
		s.Language = []string{"en", "en", "en", "es", "pt", "de"}[w.rng.IntN(6)]
		s.Mature = w.rng.IntN(5) == 0
		s.Zone = time.UTC
		if i%4 == 3 {
			s.Zone = utc11
		}
		w.list = append(w.list, s)
		w.byUser[s.UserID] = s
		w.byChannel[s.ChannelID] = s
		w.bySlug[s.Slug] = s
		if liveFraction > 0 && w.rng.Float64() < liveFraction {
			ago := time.Duration(60+w.rng.IntN(4*3600)) * time.Second
			w.startSession(s, start.Add(-ago))
			w.record(Transition{Kind: KindLive, Initial: true}, s, start)
		}
	}
	return w
}

func (w *world) randomTitle() string {
	return titleWords[w.rng.IntN(len(titleWords))] + " | " + titleWords[w.rng.IntN(len(titleWords))] + " #" + strconv.Itoa(w.rng.IntN(1000))
}

// startSession makes s live at pusherAt (the moment Kick creates the
// livestream); the official start is 1–3 s earlier, but always after the
// previous session's end, as on Kick: a quick restart is a new start time.
// Caller holds mu.
func (w *world) startSession(s *streamer, pusherAt time.Time) {
	s.PusherCreatedAt = pusherAt.UTC().Truncate(time.Second)
	s.StartedAt = s.PusherCreatedAt.Add(-time.Duration(1+w.rng.IntN(3)) * time.Second)
	if !s.lastEnded.IsZero() && !s.StartedAt.After(s.lastEnded) {
		s.StartedAt = s.lastEnded.Add(time.Second)
		if next := s.StartedAt.Add(time.Second); s.PusherCreatedAt.Before(next) {
			s.PusherCreatedAt = next
		}
	}
	s.Live = true
	w.nextLSID += 1 + int64(w.rng.IntN(50))
	s.LivestreamID = w.nextLSID
	s.Viewers = 1 + int(w.rng.ExpFloat64()*400)
	w.live[s.UserID] = s
}

// record appends a transition to the ground truth. Caller holds mu.
func (w *world) record(t Transition, s *streamer, at time.Time) {
	w.seq++
	t.Seq = w.seq
	t.UserID, t.ChannelID, t.Slug = s.UserID, s.ChannelID, s.Slug
	t.At = at
	if s.Live || t.Kind == KindOffline {
		t.StartedAt = s.StartedAt
		t.LivestreamID = s.LivestreamID
	}
	if t.Kind == KindLive {
		t.PusherCreatedAt = s.PusherCreatedAt
	}
	t.Title, t.CategoryID, t.CategoryName, t.Viewers, t.Banned = s.Title, s.CategoryID, s.CategoryName, s.Viewers, s.Banned
	if w.truthMax > 0 && len(w.truth) >= w.truthMax {
		// Keep the newer half: bounded memory for long runs.
		n := copy(w.truth, w.truth[len(w.truth)/2:])
		w.truth = w.truth[:n]
	}
	w.truth = append(w.truth, t)
}

func (w *world) snapshot() []Streamer {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]Streamer, len(w.list))
	for i, s := range w.list {
		out[i] = s.Streamer
	}
	return out
}

func (w *world) get(userID int64) (Streamer, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	s, ok := w.byUser[userID]
	if !ok {
		return Streamer{}, false
	}
	return s.Streamer, true
}

func (w *world) truthCopy() []Transition {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return append([]Transition(nil), w.truth...)
}

// update runs f on the streamer under the write lock.
func (w *world) update(userID int64, f func(s *streamer, now time.Time) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.byUser[userID]
	if !ok {
		return fmt.Errorf("%w: user id %d", ErrUnknownStreamer, userID)
	}
	return f(s, w.now())
}

func (w *world) goLive(s *streamer, now time.Time) error {
	if s.Banned {
		return fmt.Errorf("%w: %s", ErrBanned, s.Slug)
	}
	if s.Live {
		return fmt.Errorf("%w: %s", ErrAlreadyLive, s.Slug)
	}
	w.startSession(s, now)
	w.record(Transition{Kind: KindLive}, s, now)
	w.emit(change{kind: changeLive, s: s.Streamer})
	return nil
}

func (w *world) goOffline(s *streamer, now time.Time) error {
	if !s.Live {
		return fmt.Errorf("%w: %s", ErrNotLive, s.Slug)
	}
	ended := now.UTC().Truncate(time.Second)
	s.Live, s.lastEnded = false, ended
	delete(w.live, s.UserID)
	w.record(Transition{Kind: KindOffline, EndedAt: ended}, s, now)
	w.emit(change{kind: changeOffline, s: s.Streamer, endedAt: ended})
	s.StartedAt, s.PusherCreatedAt, s.Viewers = time.Time{}, time.Time{}, 0
	return nil
}

func (w *world) setTitle(s *streamer, title string, now time.Time) {
	s.Title = title
	w.record(Transition{Kind: KindTitle}, s, now)
	w.emit(change{kind: changeMetadata, s: s.Streamer, metadata: true})
}

func (w *world) setCategory(s *streamer, c Category, now time.Time) {
	s.CategoryID, s.CategoryName = c.ID, c.Name
	w.record(Transition{Kind: KindCategory}, s, now)
	w.emit(change{kind: changeMetadata, s: s.Streamer, metadata: true})
}

func (w *world) setViewers(s *streamer, v int, now time.Time) error {
	if !s.Live {
		return fmt.Errorf("%w: %s", ErrNotLive, s.Slug)
	}
	s.Viewers = v
	w.record(Transition{Kind: KindViewers}, s, now)
	w.emit(change{kind: changeUpdate, s: s.Streamer})
	return nil
}

func validSlug(slug string) bool {
	if len(slug) == 0 || len(slug) > 25 {
		return false
	}
	for _, r := range slug {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (w *world) rename(s *streamer, slug string, now time.Time) error {
	if !validSlug(slug) {
		return fmt.Errorf("%w: %q (1–25 of a-z 0-9 - _)", ErrInvalidSlug, slug)
	}
	if other, ok := w.bySlug[slug]; ok && other != s {
		return fmt.Errorf("%w: %q", ErrSlugTaken, slug)
	}
	old := s.Slug
	delete(w.bySlug, old)
	s.Slug, s.Username = slug, slug
	w.bySlug[slug] = s
	w.record(Transition{Kind: KindRename, OldSlug: old}, s, now)
	return nil
}

func (w *world) ban(s *streamer, now time.Time) error {
	if s.Banned {
		return fmt.Errorf("%w: %s", ErrBanned, s.Slug)
	}
	s.Banned = true
	if s.Live {
		if err := w.goOffline(s, now); err != nil {
			return err
		}
	}
	w.record(Transition{Kind: KindBan}, s, now)
	return nil
}

// lookupUsers returns the streamers with these user ids, in order, skipping
// unknown and duplicate ids. Caller holds mu (read).
func (w *world) lookupUsers(ids []int64) []*streamer {
	out := make([]*streamer, 0, len(ids))
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if s, ok := w.byUser[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, s)
		}
	}
	return out
}

// liveSorted returns live streamers sorted by sort ("viewer_count" desc, or
// "started_at" newest first), at most limit. Caller holds mu (read).
func (w *world) liveSorted(sortBy string, categoryID int64, language string, limit int) []*streamer {
	out := make([]*streamer, 0, len(w.live))
	for _, s := range w.live {
		if categoryID != 0 && s.CategoryID != categoryID || language != "" && s.Language != language {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if sortBy == "started_at" {
			if !a.StartedAt.Equal(b.StartedAt) {
				return a.StartedAt.After(b.StartedAt)
			}
		} else if a.Viewers != b.Viewers {
			return a.Viewers > b.Viewers
		}
		return a.UserID < b.UserID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// step performs one automatic scenario event on a random streamer.
func (w *world) step() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	s := w.list[w.rng.IntN(len(w.list))]
	if s.Banned {
		return
	}
	if !s.Live {
		_ = w.goLive(s, now)
		return
	}
	switch r := w.rng.IntN(1000); {
	case r < 500:
		_ = w.goOffline(s, now)
	case r < 700:
		_ = w.setViewers(s, max(1, s.Viewers+w.rng.IntN(201)-100), now)
	case r < 800:
		w.setTitle(s, w.randomTitle(), now)
	case r < 850:
		w.setCategory(s, categories[w.rng.IntN(len(categories))], now)
	case r < 998:
		w.emit(change{kind: changeNoise, s: s.Streamer, noise: w.rng.IntN(1 << 20)})
	default:
		slug := s.Slug
		if len(slug) > 20 {
			slug = slug[:20]
		}
		_ = w.rename(s, slug+"-"+strconv.Itoa(w.rng.IntN(1000)), now)
	}
}
