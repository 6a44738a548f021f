package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
)

// Resolution errors, for errors.Is.
var (
	// ErrInvalidSlug: the slug cannot be a Kick slug (1–25 of a-z, 0-9, '-', '_').
	ErrInvalidSlug = errors.New("invalid slug")
	// ErrUnknownSlug: Kick has no channel with this slug.
	ErrUnknownSlug = errors.New("no Kick channel with this slug")
)

// NormalizeSlug lowercases and trims a slug and checks it against Kick's
// slug rules: 1 to 25 characters of a-z, 0-9, '-' and '_'.
func NormalizeSlug(s string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	if n == "" {
		return "", fmt.Errorf("slug %q: %w: empty", s, ErrInvalidSlug)
	}
	if len(n) > kickrest.MaxSlugLen {
		return "", fmt.Errorf("slug %q: %w: longer than %d characters", s, ErrInvalidSlug, kickrest.MaxSlugLen)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", fmt.Errorf("slug %q: %w: %q is not allowed (a-z, 0-9, '-', '_')", s, ErrInvalidSlug, r)
		}
	}
	return n, nil
}

// Resolution is the outcome for one slug.
type Resolution struct {
	// Slug is the slug as given.
	Slug string
	// UserID is the broadcaster_user_id (0 on error).
	UserID int64
	// Current is the channel's state now, as a poll observation, so that a
	// streamer added while live is known to be live at once.
	Current *observation.Observation
	// Err, per slug: wraps ErrInvalidSlug, ErrUnknownSlug or a *kickrest.Error.
	Err error
}

// Resolver turns slugs into broadcaster user ids through the official
// channels API, 50 slugs per request.
type Resolver struct {
	c   *kickrest.Client
	log *slog.Logger
}

// NewResolver returns a Resolver over client.
func NewResolver(client *kickrest.Client, logger *slog.Logger) *Resolver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Resolver{c: client, log: logger.With(logkeys.Component, "resolver")}
}

// Resolve resolves slugs, one Resolution per slug in the same order. Slugs
// are normalised (lowercase, trimmed) and validated first. Kick fails a
// whole request when one slug is unknown (400); such a batch is bisected so
// the other slugs still resolve and each unknown slug is named.
func (r *Resolver) Resolve(ctx context.Context, slugs []string) []Resolution {
	out := make([]Resolution, len(slugs))
	norm := make([]string, len(slugs))
	var todo []string
	seen := map[string]bool{}
	for i, s := range slugs {
		out[i].Slug = s
		n, err := NormalizeSlug(s)
		if err != nil {
			out[i].Err = err
			continue
		}
		norm[i] = n
		if !seen[n] {
			seen[n] = true
			todo = append(todo, n)
		}
	}
	found := map[string]kickrest.Channel{}
	failed := map[string]error{}
	asked := time.Now() // answers are at least this fresh, as in poll
	for len(todo) > 0 {
		n := min(len(todo), kickrest.MaxChannelIDs)
		r.lookup(ctx, todo[:n], found, failed)
		todo = todo[n:]
	}
	for i := range out {
		n := norm[i]
		if out[i].Err != nil {
			continue
		}
		if ch, ok := found[n]; ok {
			obs := Observe(ch, 0, asked)
			out[i].UserID, out[i].Current = ch.BroadcasterUserID, &obs
			continue
		}
		err := failed[n]
		if err == nil {
			err = ErrUnknownSlug
		}
		out[i].Err = fmt.Errorf("resolve %q: %w", out[i].Slug, err)
	}
	return out
}

// lookup resolves one batch into found, bisecting on 400. Slugs Kick does
// not return stay in neither map (unknown); other failures go to failed.
func (r *Resolver) lookup(ctx context.Context, batch []string, found map[string]kickrest.Channel, failed map[string]error) {
	chs, err := r.c.ChannelsBySlug(ctx, batch)
	switch {
	case err == nil:
		for _, ch := range chs {
			found[strings.ToLower(ch.Slug)] = ch
		}
	case kickrest.KindOf(err) == kickrest.BadRequest && len(batch) > 1:
		mid := len(batch) / 2
		r.lookup(ctx, batch[:mid], found, failed)
		r.lookup(ctx, batch[mid:], found, failed)
	case kickrest.KindOf(err) == kickrest.BadRequest:
		r.log.Info("unknown slug", logkeys.Slug, batch[0], logkeys.Err, err)
		failed[batch[0]] = fmt.Errorf("%w (%v)", ErrUnknownSlug, err)
	default:
		for _, s := range batch {
			failed[s] = err
		}
	}
}
