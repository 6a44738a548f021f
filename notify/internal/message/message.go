// Package message turns a kickmon event into what a target shows: the
// Notice the templates see, the default templates (one per change), and
// rendering with text/template. Templates are parsed and tried on a
// sample notice at start, so a broken template is a configuration error,
// not a failed delivery.
package message

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Changes a notice can be about, as in notify.yaml's events list, plus
// back_live (a live that follows a recent notification) and test.
const (
	Live     = "live"
	BackLive = "back_live"
	Offline  = "offline"
	Title    = "title"
	Category = "category"
	Renamed  = "renamed"
	Test     = "test"
)

// Events are the changes a target may subscribe to.
var Events = []string{Live, Offline, Title, Category, Renamed}

// Kinds are the keys of a target's templates.
var Kinds = []string{Live, BackLive, Offline, Title, Category, Renamed, Test}

// Notice is what a template renders: one change of one streamer.
type Notice struct {
	Kind         string   // live, back_live, offline, title, category, renamed or test
	Changes      []string // every change of the event (title and category may come together)
	Seq          uint64
	Slug         string
	PreviousSlug string // renamed only
	Title        string
	Category     string
	Viewers      int64
	PeakViewers  int64
	StartedAt    time.Time // the session's start (zero if none)
	EndedAt      time.Time // offline only
	At           time.Time // when the change happened (Kick's time, else kickmon's)
	URL          string    // https://kick.com/<slug>
	Thumbnail    string    // the stream's preview image URL, as Kick gave it; empty if none
}

// Duration is how long the session lasted (offline) or has lasted until
// At, rounded to the minute; zero without a start.
func (n Notice) Duration() Span {
	if n.StartedAt.IsZero() {
		return 0
	}
	end := n.EndedAt
	if end.IsZero() {
		end = n.At
	}
	return Span(end.Sub(n.StartedAt).Round(time.Minute))
}

// Span is a duration in minutes, printed like 2h30m.
type Span time.Duration

func (s Span) String() string {
	str := time.Duration(s).String()
	str = strings.TrimSuffix(str, "0s")
	if strings.HasSuffix(str, "h0m") {
		str = strings.TrimSuffix(str, "0m")
	}
	return str
}

// FromEvent builds the notice of kind about e.
func FromEvent(kind string, changes []string, e *kickmonv1.Event) Notice {
	st := e.GetStreamer()
	sess := e.GetSession()
	if sess == nil {
		sess = st.GetSession()
	}
	at := e.GetKickTime()
	if at == nil {
		at = e.GetObservedAt()
	}
	n := Notice{
		Kind:         kind,
		Changes:      changes,
		Seq:          e.GetSeq(),
		Slug:         st.GetSlug(),
		PreviousSlug: e.GetPreviousSlug(),
		Title:        st.GetTitle(),
		Category:     st.GetCategoryName(),
		Viewers:      st.GetViewerCount(),
		PeakViewers:  sess.GetPeakViewers(),
		At:           at.AsTime(),
		URL:          ChannelURL(st.GetSlug()),
		Thumbnail:    st.GetThumbnailUrl(),
	}
	if n.Title == "" {
		n.Title = sess.GetTitle()
	}
	if n.Category == "" {
		n.Category = sess.GetCategoryName()
	}
	if sess.GetStartedAt() != nil {
		n.StartedAt = sess.GetStartedAt().AsTime()
	}
	if sess.GetEndedAt() != nil {
		n.EndedAt = sess.GetEndedAt().AsTime()
	}
	return n
}

// ChannelURL is the streamer's page on Kick.
func ChannelURL(slug string) string { return "https://kick.com/" + slug }

// Sample is a notice with every field set, used to try templates.
func Sample(kind string) Notice {
	t0 := time.Date(2026, 1, 2, 20, 0, 0, 0, time.UTC)
	return Notice{Kind: kind, Changes: []string{kind}, Seq: 42, Slug: "xqc", PreviousSlug: "xqcow", Title: "a title",
		Category: "Just Chatting", Viewers: 1234, PeakViewers: 2000, StartedAt: t0, EndedAt: t0.Add(3 * time.Hour), At: t0, URL: ChannelURL("xqc"),
		Thumbnail: "https://images.kick.com/video_thumbnails/xqc/1/720.webp"}
}

// Defaults are the templates used when a target sets none for a kind.
var Defaults = map[string]string{
	Live:     `{{.Slug}} is live: {{.Title}}{{with .Category}} ({{.}}){{end}} {{.URL}}`,
	BackLive: `{{.Slug}} is back live: {{.Title}} {{.URL}}`,
	Offline:  `{{.Slug}} went offline{{with .Duration}} after {{.}}{{end}}`,
	Title:    `{{.Slug}} changed the title: {{.Title}}`,
	Category: `{{.Slug}} is now in {{.Category}}`,
	Renamed:  `{{.PreviousSlug}} is now {{.Slug}} {{.URL}}`,
	Test:     `kickmon test message: this target works`,
}

// Parse parses a template for kind and tries it on Sample(kind): a
// template that names a missing field fails here, not at delivery.
func Parse(kind, text string) (*template.Template, error) {
	t, err := template.New(kind).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if _, err := Render(t, Sample(kind)); err != nil {
		return nil, err
	}
	return t, nil
}

// Render executes t for n; the result is trimmed and never empty.
func Render(t *template.Template, n Notice) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, n); err != nil {
		return "", fmt.Errorf("template %s: %w", t.Name(), err)
	}
	s := strings.TrimSpace(b.String())
	if s == "" {
		return "", fmt.Errorf("template %s: renders an empty message", t.Name())
	}
	return s, nil
}

// DefaultTemplates parses Defaults.
func DefaultTemplates() map[string]*template.Template {
	out := make(map[string]*template.Template, len(Defaults))
	for k, v := range Defaults {
		out[k] = template.Must(Parse(k, v))
	}
	return out
}
