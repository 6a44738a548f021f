package kicksim

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Messages of api.kick.com's error envelope.
const (
	msgBadRequest = "Bad request"
	// bodyAppTokenNeedsID is the exact data of the 400 for /public/v1/channels
	// with an app token and no parameter (kick-api.md §1.4, KDD #140).
	bodyAppTokenNeedsID = "broadcaster_user_id is required for app tokens"
)

// offlineStartTime is stream.start_time of an offline channel. Kick's API is
// written in Go (swag definitions) and the field is a non-null time, so an
// offline channel carries Go's zero time. [kick-api.md is silent: inference]
const offlineStartTime = "0001-01-01T00:00:00Z"

func badRequest(w http.ResponseWriter, data string) {
	writeJSON(w, http.StatusBadRequest, envelope{Data: data, Message: msgBadRequest})
}

func ok(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, envelope{Data: data, Message: "OK"})
}

// api wraps a public API handler: faults first (they come from the edge in
// front of Kick), then the bearer token.
func (s *Sim) api(ep Endpoint, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.applyFault(w, r, ep) {
			return
		}
		tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !found || !s.tokens.valid(strings.TrimSpace(tok)) {
			writeUnauthorized(w)
			return
		}
		h(w, r)
	}
}

// officialTime renders an official time: RFC3339, second precision, in the
// streamer's zone.
func officialTime(t time.Time, zone *time.Location) string {
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format(time.RFC3339)
}

type apiCategory struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Thumbnail string `json:"thumbnail"`
}

func categoryOf(s *streamer) apiCategory {
	c, _ := categoryByID(s.CategoryID)
	return apiCategory{ID: c.ID, Name: c.Name, Thumbnail: c.thumbnail()}
}

// apiChannel is an item of GET /public/v1/channels, in the order of the
// spec example (kick-api.md §1.5).
type apiChannel struct {
	ActiveSubscribersCount   int64            `json:"active_subscribers_count"`
	BannerPicture            string           `json:"banner_picture"`
	BroadcasterUserID        int64            `json:"broadcaster_user_id"`
	CanceledSubscribersCount int64            `json:"canceled_subscribers_count"`
	Category                 apiCategory      `json:"category"`
	ChannelDescription       string           `json:"channel_description"`
	Slug                     string           `json:"slug"`
	Stream                   apiChannelStream `json:"stream"`
	StreamTitle              string           `json:"stream_title"`
}

type apiChannelStream struct {
	CustomTags  []string `json:"custom_tags"`
	IsLive      bool     `json:"is_live"`
	IsMature    bool     `json:"is_mature"`
	Key         string   `json:"key"`
	Language    string   `json:"language"`
	StartTime   string   `json:"start_time"`
	URL         string   `json:"url"`
	ViewerCount int      `json:"viewer_count"`
	Thumbnail   string   `json:"thumbnail"`
}

func customTags(s *streamer) []string {
	if s.UserID%3 == 0 {
		return []string{"chill", strings.ToLower(languageName(s.Language))}
	}
	return []string{}
}

func streamThumbnail(s *streamer) string {
	return "https://images.kick.com/video_thumbnails/" + s.Slug + "/" + strconv.FormatInt(s.LivestreamID, 10) + "/720.webp"
}

func profilePicture(s *streamer) string {
	return "https://files.kick.com/images/user/" + strconv.FormatInt(s.UserID, 10) + "/profile_image/conversion/" + uuidFor(s.UserID) + "-medium.webp"
}

// channelItem renders a channel. Offline: zero category, empty title and
// stream strings, no tags (gokick's offline dump, kick-api.md §1.5). key and
// url are only for the owner with streamkey:read, so always empty here.
func channelItem(s *streamer) apiChannel {
	c := apiChannel{
		ActiveSubscribersCount:   s.UserID % 500,
		BannerPicture:            "https://files.kick.com/images/channel/" + strconv.FormatInt(s.ChannelID, 10) + "/banner_image/default-banner-2.jpg",
		BroadcasterUserID:        s.UserID,
		CanceledSubscribersCount: s.UserID % 30,
		ChannelDescription:       "",
		Slug:                     s.Slug,
		Stream:                   apiChannelStream{CustomTags: []string{}, StartTime: offlineStartTime},
	}
	if s.Live {
		c.Category = categoryOf(s)
		c.StreamTitle = s.Title
		c.Stream = apiChannelStream{
			CustomTags:  customTags(s),
			IsLive:      true,
			IsMature:    s.Mature,
			Language:    s.Language,
			StartTime:   officialTime(s.StartedAt, s.Zone),
			ViewerCount: s.Viewers,
			Thumbnail:   streamThumbnail(s),
		}
	}
	return c
}

func parseIDs(vals []string, name string) ([]int64, error) {
	ids := make([]int64, 0, len(vals))
	for _, v := range vals {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("invalid %s: %q", name, v)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// handleChannels serves GET /public/v1/channels.
func (s *Sim) handleChannels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	idVals, slugs := q["broadcaster_user_id"], q["slug"]
	switch {
	case len(idVals) > 0 && len(slugs) > 0:
		badRequest(w, "cannot mix broadcaster_user_id and slug")
		return
	case len(idVals) == 0 && len(slugs) == 0:
		badRequest(w, bodyAppTokenNeedsID)
		return
	case len(idVals) > 50:
		badRequest(w, "broadcaster_user_id: maximum 50 values")
		return
	case len(slugs) > 50:
		badRequest(w, "slug: maximum 50 values")
		return
	}
	items := make([]apiChannel, 0, len(idVals)+len(slugs))
	if len(idVals) > 0 {
		ids, err := parseIDs(idVals, "broadcaster_user_id")
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		s.world.mu.RLock()
		for _, st := range s.world.lookupUsers(ids) {
			items = append(items, channelItem(st))
		}
		s.world.mu.RUnlock()
		ok(w, items)
		return
	}
	for _, sl := range slugs {
		if len(sl) == 0 || len(sl) > 25 {
			badRequest(w, "slug: each value must be 1 to 25 characters")
			return
		}
	}
	s.world.mu.RLock()
	seen := make(map[string]bool, len(slugs))
	for _, sl := range slugs {
		st, found := s.world.bySlug[strings.ToLower(sl)]
		if !found {
			// An unknown slug fails the whole request (kicksdk, kick-api.md §1.4).
			s.world.mu.RUnlock()
			badRequest(w, "channel not found for slug "+strconv.Quote(sl))
			return
		}
		if !seen[st.Slug] {
			seen[st.Slug] = true
			items = append(items, channelItem(st))
		}
	}
	s.world.mu.RUnlock()
	ok(w, items)
}

// apiLivestream is an item of GET /public/v1/livestreams (kick-api.md
// §1.6a, spec example order).
type apiLivestream struct {
	BroadcasterUserID int64       `json:"broadcaster_user_id"`
	Category          apiCategory `json:"category"`
	ChannelID         int64       `json:"channel_id"`
	HasMatureContent  bool        `json:"has_mature_content"`
	Language          string      `json:"language"`
	ProfilePicture    string      `json:"profile_picture"`
	Slug              string      `json:"slug"`
	StartedAt         string      `json:"started_at"`
	StreamTitle       string      `json:"stream_title"`
	Thumbnail         string      `json:"thumbnail"`
	ViewerCount       int         `json:"viewer_count"`
	CustomTags        []string    `json:"custom_tags"`
}

func livestreamItem(s *streamer) apiLivestream {
	return apiLivestream{
		BroadcasterUserID: s.UserID,
		Category:          categoryOf(s),
		ChannelID:         s.ChannelID,
		HasMatureContent:  s.Mature,
		Language:          s.Language,
		ProfilePicture:    profilePicture(s),
		Slug:              s.Slug,
		StartedAt:         officialTime(s.StartedAt, s.Zone),
		StreamTitle:       s.Title,
		Thumbnail:         streamThumbnail(s),
		ViewerCount:       s.Viewers,
		CustomTags:        customTags(s),
	}
}

// handleLivestreams serves GET /public/v1/livestreams (v1, deprecated by
// Kick but the only official source of channel_id).
func (s *Sim) handleLivestreams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids, err := parseIDs(q["broadcaster_user_id"], "broadcaster_user_id")
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if len(ids) > 50 {
		badRequest(w, "broadcaster_user_id: maximum 50 values")
		return
	}
	limit := 25
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 100 {
			badRequest(w, "limit must be between 1 and 100")
			return
		}
	}
	sortBy := q.Get("sort")
	if sortBy != "" && sortBy != "viewer_count" && sortBy != "started_at" {
		badRequest(w, "sort must be viewer_count or started_at")
		return
	}
	var categoryID int64
	if v := q.Get("category_id"); v != "" {
		if categoryID, err = strconv.ParseInt(v, 10, 64); err != nil {
			badRequest(w, "invalid category_id")
			return
		}
	}
	language := q.Get("language")
	items := make([]apiLivestream, 0)
	s.world.mu.RLock()
	if len(ids) > 0 {
		for _, st := range s.world.lookupUsers(ids) {
			if !st.Live || categoryID != 0 && st.CategoryID != categoryID || language != "" && st.Language != language {
				continue
			}
			if len(items) < limit {
				items = append(items, livestreamItem(st))
			}
		}
	} else {
		for _, st := range s.world.liveSorted(sortBy, categoryID, language, limit) {
			items = append(items, livestreamItem(st))
		}
	}
	s.world.mu.RUnlock()
	ok(w, items)
}

// apiLivestreamV2 is an item of GET /public/v1/users/livestreams
// (LivestreamV2, kick-api.md §1.6b/c; id is a string).
type apiLivestreamV2 struct {
	ID              string          `json:"id"`
	BroadcasterUser apiBroadcasterU `json:"broadcaster_user"`
	Category        apiCategory     `json:"category"`
	Channel         struct {
		Slug string `json:"slug"`
	} `json:"channel"`
	HasMatureContent bool     `json:"has_mature_content"`
	LanguageCode     string   `json:"language_code"`
	StartedAt        string   `json:"started_at"`
	Tags             []string `json:"tags"`
	Thumbnail        string   `json:"thumbnail"`
	Title            string   `json:"title"`
	ViewerCount      int      `json:"viewer_count"`
}

type apiBroadcasterU struct {
	ID             int64  `json:"id"`
	Username       string `json:"username"`
	ProfilePicture string `json:"profile_picture"`
}

// handleUsersLivestreams serves GET /public/v1/users/livestreams?user_id=…
// (up to 100; only live users appear).
func (s *Sim) handleUsersLivestreams(w http.ResponseWriter, r *http.Request) {
	ids, err := parseIDs(r.URL.Query()["user_id"], "user_id")
	switch {
	case err != nil:
		badRequest(w, err.Error())
		return
	case len(ids) == 0:
		badRequest(w, "user_id is required")
		return
	case len(ids) > 100:
		badRequest(w, "user_id: maximum 100 values")
		return
	}
	items := make([]apiLivestreamV2, 0, len(ids))
	s.world.mu.RLock()
	for _, st := range s.world.lookupUsers(ids) {
		if !st.Live {
			continue
		}
		it := apiLivestreamV2{
			ID:               uuidFor(st.LivestreamID),
			BroadcasterUser:  apiBroadcasterU{ID: st.UserID, Username: st.Username, ProfilePicture: profilePicture(st)},
			Category:         categoryOf(st),
			HasMatureContent: st.Mature,
			LanguageCode:     st.Language,
			StartedAt:        officialTime(st.StartedAt, st.Zone),
			Tags:             customTags(st),
			Thumbnail:        streamThumbnail(st),
			Title:            st.Title,
			ViewerCount:      st.Viewers,
		}
		it.Channel.Slug = st.Slug
		items = append(items, it)
	}
	s.world.mu.RUnlock()
	ok(w, items)
}

// PublicKeyPEM is the PEM ("PUBLIC KEY", PKIX) of the key that signs the
// sim's webhooks, as served by /public/v1/public-key.
func (s *Sim) PublicKeyPEM() string {
	der, err := x509.MarshalPKIXPublicKey(&s.o.key.PublicKey)
	if err != nil {
		panic("kicksim: marshal public key: " + err.Error()) // an RSA key always marshals
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// handlePublicKey serves GET /public/v1/public-key.
func (s *Sim) handlePublicKey(w http.ResponseWriter, _ *http.Request) {
	ok(w, struct {
		PublicKey string `json:"public_key"`
	}{s.PublicKeyPEM()})
}

// subscribeRequest is the body of POST /public/v1/events/subscriptions.
type subscribeRequest struct {
	BroadcasterUserID int64 `json:"broadcaster_user_id"`
	Events            []struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	} `json:"events"`
	Method string `json:"method"`
}

type subscribeResult struct {
	Name           string `json:"name"`
	Version        int    `json:"version"`
	SubscriptionID string `json:"subscription_id"`
	Error          string `json:"error"`
}

func (s *Sim) handleCreateSubscriptions(w http.ResponseWriter, r *http.Request) {
	var req subscribeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		badRequest(w, "invalid request body")
		return
	}
	switch {
	case req.BroadcasterUserID == 0:
		badRequest(w, bodyAppTokenNeedsID)
		return
	case req.Method != "" && req.Method != "webhook":
		badRequest(w, "method must be webhook")
		return
	case len(req.Events) == 0:
		badRequest(w, "events is required")
		return
	}
	if _, found := s.world.get(req.BroadcasterUserID); !found {
		badRequest(w, "broadcaster not found")
		return
	}
	out := make([]subscribeResult, 0, len(req.Events))
	for _, e := range req.Events {
		res := subscribeResult{Name: e.Name, Version: e.Version}
		switch {
		case !knownEvents[e.Name]:
			res.Error = "event not found"
		case e.Version != 1:
			res.Error = "event version not supported"
		default:
			res.SubscriptionID = s.hooks.subscribe(req.BroadcasterUserID, e.Name, e.Version)
		}
		out = append(out, res)
	}
	ok(w, out)
}

func (s *Sim) handleListSubscriptions(w http.ResponseWriter, r *http.Request) {
	var filter int64
	if v := r.URL.Query().Get("broadcaster_user_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			badRequest(w, "invalid broadcaster_user_id")
			return
		}
		filter = id
	}
	ok(w, s.hooks.list(filter))
}

func (s *Sim) handleDeleteSubscriptions(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	if len(ids) == 0 {
		badRequest(w, "id is required")
		return
	}
	s.hooks.unsubscribe(ids)
	w.WriteHeader(http.StatusNoContent)
}
