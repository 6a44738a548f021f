// Package targets delivers one rendered notice to one target over HTTP:
// Discord webhooks (an embed, mentions disabled), Slack incoming webhooks,
// ntfy topics and signed generic webhooks. Every request carries the
// idempotency key X-Kickmon-Delivery. Errors say whether and when to
// retry, and never contain the target's URL (it is a secret).
package targets

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kickmon/kickmon/notify/internal/config"
	"github.com/kickmon/kickmon/notify/internal/message"
)

// Headers of every delivery.
const (
	HeaderDelivery  = "X-Kickmon-Delivery"  // idempotency key: "<target>:<seq>", the same on every retry
	HeaderKind      = "X-Kickmon-Kind"      // the notice's kind (live, back_live, offline, …)
	HeaderSignature = "X-Kickmon-Signature" // webhook: hex HMAC-SHA256 of the body with the target's secret
)

// Delivery is one notice for one target.
type Delivery struct {
	Target *config.Target
	Notice message.Notice
	// Text is the rendered template.
	Text string
	// Event is the event as protojson with proto names (the webhook body).
	Event json.RawMessage
	// Key is the idempotency key (Key(target, seq) for events).
	Key string
}

// Key is the idempotency key: the target's name and the event's seq.
func Key(target string, seq uint64) string { return target + ":" + strconv.FormatUint(seq, 10) }

// Error is a failed delivery.
type Error struct {
	Status     int           // HTTP status, 0 for a network error
	RetryAfter time.Duration // when the target said when to retry (429)
	Permanent  bool          // retrying cannot help (a 4xx other than 408 and 429)
	msg        string
}

func (e *Error) Error() string { return e.msg }

// Sender sends deliveries with an HTTP client.
type Sender struct {
	Client    *http.Client
	UserAgent string
}

// Send delivers d and returns the target's status line.
func (s *Sender) Send(ctx context.Context, d Delivery) (string, error) {
	body, ctype, err := encode(d)
	if err != nil {
		return "", &Error{Permanent: true, msg: fmt.Sprintf("encode %s message: %v", d.Target.Type, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target.URL, bytes.NewReader(body))
	if err != nil {
		return "", &Error{Permanent: true, msg: "build request: invalid target URL"}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", s.UserAgent)
	req.Header.Set(HeaderDelivery, d.Key)
	req.Header.Set(HeaderKind, d.Notice.Kind)
	switch d.Target.Type {
	case config.Webhook:
		req.Header.Set(HeaderSignature, Sign(d.Target.Secret, body))
	case config.Ntfy:
		req.Header.Set("Title", ntfyTitle(d.Notice))
		req.Header.Set("Click", d.Notice.URL)
		req.Header.Set("Tags", d.Notice.Kind)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL, a secret
		}
		return "", &Error{msg: fmt.Sprintf("post to %s target: %v", d.Target.Type, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.Status, nil
	}
	e := &Error{Status: resp.StatusCode, msg: fmt.Sprintf("%s target answered %s: %s", d.Target.Type, resp.Status, clip(string(snippet), 200))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e.RetryAfter = retryAfter(resp.Header, snippet)
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
	default:
		e.Permanent = true
	}
	return "", e
}

// Sign is the X-Kickmon-Signature of body: hex HMAC-SHA256 with key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// retryAfter reads Discord's JSON retry_after (seconds, fractional), else
// the Retry-After header (seconds or an HTTP date), else 0.
func retryAfter(h http.Header, body []byte) time.Duration {
	var d struct {
		RetryAfter float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &d) == nil && d.RetryAfter > 0 {
		return time.Duration(d.RetryAfter * float64(time.Second))
	}
	v := h.Get("Retry-After")
	if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func encode(d Delivery) ([]byte, string, error) {
	switch d.Target.Type {
	case config.Discord:
		b, err := json.Marshal(discordMessage(d))
		return b, "application/json", err
	case config.Slack:
		b, err := json.Marshal(map[string]string{"text": slackEscape(d.Text)})
		return b, "application/json", err
	case config.Ntfy:
		return []byte(d.Text), "text/plain; charset=utf-8", nil
	case config.Webhook:
		if len(d.Event) == 0 {
			return nil, "", errors.New("no event")
		}
		return d.Event, "application/json", nil
	}
	return nil, "", fmt.Errorf("unknown target type %q", d.Target.Type)
}

type discordBody struct {
	Content         string          `json:"content"`
	Embeds          []discordEmbed  `json:"embeds,omitempty"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
}

// allowedMentions with an empty Parse list: nothing in the text pings
// anyone (@everyone, @here, roles, users), whatever a title says.
type allowedMentions struct {
	Parse []string `json:"parse"`
}

type discordEmbed struct {
	Title     string         `json:"title,omitempty"`
	URL       string         `json:"url,omitempty"`
	Author    *discordAuthor `json:"author,omitempty"`
	Fields    []discordField `json:"fields,omitempty"`
	Image     *discordImage  `json:"image,omitempty"`
	Timestamp string         `json:"timestamp,omitempty"`
	Color     int            `json:"color,omitempty"`
}

type discordImage struct {
	URL string `json:"url"`
}

type discordAuthor struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// kickGreen is Kick's brand colour, for the embed's bar.
const kickGreen = 0x53FC18

func discordMessage(d Delivery) discordBody {
	n := d.Notice
	b := discordBody{Content: clip(d.Text, 2000), AllowedMentions: allowedMentions{Parse: []string{}}}
	if n.Kind != message.Live && n.Kind != message.BackLive {
		return b
	}
	e := discordEmbed{Title: clip(n.Title, 256), URL: n.URL, Author: &discordAuthor{Name: n.Slug, URL: n.URL}, Color: kickGreen}
	if e.Title == "" {
		e.Title = n.Slug + " is live"
	}
	if n.Category != "" {
		e.Fields = append(e.Fields, discordField{Name: "Category", Value: clip(n.Category, 1024), Inline: true})
	}
	e.Fields = append(e.Fields, discordField{Name: "Viewers", Value: strconv.FormatInt(n.Viewers, 10), Inline: true})
	if !n.StartedAt.IsZero() {
		e.Timestamp = n.StartedAt.UTC().Format(time.RFC3339)
		e.Fields = append(e.Fields, discordField{Name: "Started", Value: fmt.Sprintf("<t:%d:R>", n.StartedAt.Unix()), Inline: true})
	}
	if imageURL(n.Thumbnail) {
		e.Image = &discordImage{URL: n.Thumbnail}
	}
	b.Embeds = []discordEmbed{e}
	return b
}

// imageURL reports whether Discord can show s as an embed image: an
// absolute http(s) URL. Anything else would make Discord refuse the whole
// message (400), so the embed goes without the picture instead.
func imageURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2048
}

// slackEscape escapes what Slack's mrkdwn treats as control sequences
// (<!everyone>, <@U123>, links), so a title cannot ping or disguise a link.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// ntfyTitle is the notification's title; HTTP headers carry ASCII only,
// and slugs are ASCII.
func ntfyTitle(n message.Notice) string {
	switch n.Kind {
	case message.Live:
		return n.Slug + " is live"
	case message.BackLive:
		return n.Slug + " is back live"
	case message.Offline:
		return n.Slug + " went offline"
	case message.Test:
		return "kickmon test"
	}
	return n.Slug
}

// clip cuts s to at most n runes, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
