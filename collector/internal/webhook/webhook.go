// Package webhook receives Kick's official webhooks (kick-api.md §1.10) on
// POST /webhooks/kick and turns livestream.status.updated and
// livestream.metadata.updated into observations.
//
// A delivery counts only when its RSA-SHA256 signature over
// "id.timestamp.body" verifies with Kick's public key (fetched from
// /public/v1/public-key, Kick's documented key when that fails), its
// timestamp is within five minutes of now, and its Kick-Event-Message-Id
// has not been seen before; anything else changes nothing. A Repairer
// re-creates the subscriptions Kick drops.
package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickjson"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/observation"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Path is where Kick delivers webhooks.
const Path = "/webhooks/kick"

// Webhook headers (kick-api.md §1.10.5).
const (
	HeaderMessageID      = "Kick-Event-Message-Id"
	HeaderSubscriptionID = "Kick-Event-Subscription-Id"
	HeaderSignature      = "Kick-Event-Signature"
	HeaderTimestamp      = "Kick-Event-Message-Timestamp"
	HeaderEventType      = "Kick-Event-Type"
	HeaderEventVersion   = "Kick-Event-Version"
)

// Webhook events kickmon handles.
const (
	EventStatusUpdated   = "livestream.status.updated"
	EventMetadataUpdated = "livestream.metadata.updated"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultTolerance    = 5 * time.Minute
	DefaultDedupSize    = 100_000
)

// Options configures a Handler.
type Options struct {
	// Out receives the observations. Required.
	Out chan<- observation.Observation
	// Keys fetches the verification key; nil means Kick's documented key.
	Keys KeySource
	// Logger (discard when nil).
	Logger *slog.Logger
	// Now is the clock for the timestamp check (time.Now when nil).
	Now func() time.Time
	// MaxBodyBytes bounds a delivery's body; larger ones get 413
	// (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// Tolerance is how far a delivery's timestamp may be from now
	// (DefaultTolerance when 0).
	Tolerance time.Duration
	// DedupSize bounds the remembered message ids (DefaultDedupSize when
	// 0). Ids are remembered for twice the tolerance: older deliveries are
	// refused by the timestamp check anyway.
	DedupSize int
}

// Stats counts deliveries by outcome.
type Stats struct {
	Accepted   int64 // verified and turned into an observation
	Duplicates int64 // repeated message ids, answered 200 and ignored
	Ignored    int64 // verified deliveries of other event types
	BadRequest int64 // missing headers, bad timestamps, bad payloads
	Stale      int64 // timestamps outside the tolerance
	BadSig     int64 // signatures that do not verify
	TooLarge   int64 // bodies over MaxBodyBytes
	// OtherVersion counts accepted deliveries whose Kick-Event-Version is
	// not the version kickmon subscribes to (decoded leniently all the same).
	OtherVersion int64
	// LastDelivery is when a verified delivery was last accepted.
	LastDelivery time.Time
}

// Handler serves POST /webhooks/kick.
type Handler struct {
	o    Options
	log  *slog.Logger
	keys *keys
	seen *dedup
	// shutdownGrace bounds the graceful shutdown of Serve.
	shutdownGrace time.Duration
	stats         struct{ accepted, duplicates, ignored, badRequest, stale, badSig, tooLarge, otherVersion, lastDelivery atomic.Int64 }
}

// NewHandler validates o and returns a handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Out == nil {
		return nil, errors.New("webhook: Options.Out is required")
	}
	if o.MaxBodyBytes < 0 || o.Tolerance < 0 || o.DedupSize < 0 {
		return nil, errors.New("webhook: options must not be negative")
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.DedupSize == 0 {
		o.DedupSize = DefaultDedupSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(logkeys.Component, "webhook")
	return &Handler{
		o:    o,
		log:  log,
		keys: &keys{src: o.Keys, log: log, now: o.Now},
		seen: newDedup(o.DedupSize, 2*o.Tolerance),

		shutdownGrace: 5 * time.Second,
	}, nil
}

// Stats returns the delivery counters.
func (h *Handler) Stats() Stats {
	s := &h.stats
	st := Stats{Accepted: s.accepted.Load(), Duplicates: s.duplicates.Load(), Ignored: s.ignored.Load(),
		BadRequest: s.badRequest.Load(), Stale: s.stale.Load(), BadSig: s.badSig.Load(), TooLarge: s.tooLarge.Load(),
		OtherVersion: s.otherVersion.Load()}
	if ns := s.lastDelivery.Load(); ns != 0 {
		st.LastDelivery = time.Unix(0, ns)
	}
	return st
}

// maxLoggedID bounds a message id in the logs: Kick's are 26-character
// ULIDs; anyone can send 16 KiB of header.
const maxLoggedID = 40

// reject answers an error status with a short plain-text reason. Anyone
// can post here, so a rejection is logged at debug only (with the message
// id cut short) and counted; the counters are on /metrics.
func (h *Handler) reject(w http.ResponseWriter, status int, counter *atomic.Int64, msgID, reason string) {
	counter.Add(1)
	h.log.Debug("webhook rejected", logkeys.Status, status, logkeys.MessageID, observation.Clean(msgID, maxLoggedID), logkeys.Reason, reason)
	http.Error(w, reason, status)
}

// ServeHTTP handles one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s := &h.stats
	msgID := strings.TrimSpace(r.Header.Get(HeaderMessageID))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.reject(w, http.StatusRequestEntityTooLarge, &s.tooLarge, msgID, "body too large")
			return
		}
		h.reject(w, http.StatusBadRequest, &s.badRequest, msgID, "cannot read body")
		return
	}
	ts, sig := strings.TrimSpace(r.Header.Get(HeaderTimestamp)), r.Header.Get(HeaderSignature)
	if msgID == "" || ts == "" || sig == "" {
		h.reject(w, http.StatusBadRequest, &s.badRequest, msgID, "missing Kick-Event-Message-Id, -Message-Timestamp or -Signature")
		return
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		h.reject(w, http.StatusBadRequest, &s.badRequest, msgID, "bad Kick-Event-Message-Timestamp")
		return
	}
	if d := h.o.Now().Sub(at); d > h.o.Tolerance || d < -h.o.Tolerance {
		h.reject(w, http.StatusBadRequest, &s.stale, msgID, "timestamp outside the tolerance")
		return
	}
	if err := h.verify(r.Context(), msgID, ts, body, sig); err != nil {
		h.reject(w, http.StatusUnauthorized, &s.badSig, msgID, "bad signature")
		return
	}
	if !h.seen.claim(msgID, h.o.Now()) {
		s.duplicates.Add(1)
		h.log.Debug("duplicate webhook ignored", logkeys.MessageID, observation.Clean(msgID, maxLoggedID))
		w.WriteHeader(http.StatusOK)
		return
	}
	event := r.Header.Get(HeaderEventType)
	o, ok, err := Decode(event, body)
	if err != nil {
		h.seen.release(msgID)
		h.reject(w, http.StatusBadRequest, &s.badRequest, msgID, "bad payload: "+err.Error())
		return
	}
	if !ok {
		s.ignored.Add(1)
		h.log.Debug("webhook event ignored", logkeys.Event, observation.Clean(event, maxLoggedID), logkeys.MessageID, observation.Clean(msgID, maxLoggedID))
		w.WriteHeader(http.StatusOK)
		return
	}
	o.ObservedAt = time.Now()
	if o.KickTime.IsZero() {
		o.KickTime = at
	}
	select {
	case h.o.Out <- o:
	case <-r.Context().Done():
		h.seen.release(msgID) // Kick retries; the redelivery must count
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.accepted.Add(1)
	s.lastDelivery.Store(o.ObservedAt.UnixNano())
	// The newer headers (kick-api.md §2.8) say which subscription and which
	// version of the event this is.
	if v := strings.TrimSpace(r.Header.Get(HeaderEventVersion)); v != "" && v != "1" {
		s.otherVersion.Add(1)
		h.log.Warn("webhook event of another version decoded as version 1", logkeys.Event, event, logkeys.Version, v, logkeys.Subscriber, r.Header.Get(HeaderSubscriptionID))
	} else {
		h.log.Debug("webhook accepted", logkeys.Event, event, logkeys.MessageID, msgID, logkeys.Subscriber, r.Header.Get(HeaderSubscriptionID))
	}
	w.WriteHeader(http.StatusOK)
}

// verify checks the signature with the current key, and once more with a
// freshly fetched one when the key may have rotated.
func (h *Handler) verify(ctx context.Context, msgID, ts string, body []byte, sig string) error {
	key, _ := h.keys.get(ctx, false)
	err := Verify(key, msgID, ts, body, sig)
	if err == nil {
		return nil
	}
	if key2, changed := h.keys.get(ctx, true); changed {
		return Verify(key2, msgID, ts, body, sig)
	}
	return err
}

// broadcaster is the part of the payload kickmon reads; is_verified (may be
// null), identity (may be absent) and the rest are ignored.
type broadcaster struct {
	UserID      kickjson.Int `json:"user_id"`
	ChannelSlug string       `json:"channel_slug"`
}

type statusPayload struct {
	Broadcaster broadcaster `json:"broadcaster"`
	IsLive      *bool       `json:"is_live"`
	Title       *string     `json:"title"`
	StartedAt   *string     `json:"started_at"`
	EndedAt     *string     `json:"ended_at"`
}

type metadataPayload struct {
	Broadcaster broadcaster `json:"broadcaster"`
	Metadata    struct {
		Title    *string `json:"title"`
		Category *struct {
			ID   kickjson.Int `json:"id"`
			Name string       `json:"name"`
		} `json:"category"`
	} `json:"metadata"`
}

// parseTime parses an official time (RFC 3339, kickjson.ParseTime);
// null and "" are zero.
func parseTime(field string, s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	t, err := kickjson.ParseTime(*s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", field, err)
	}
	return t, nil
}

// Decode turns a verified delivery into an observation (without
// ObservedAt). ok is false for event types kickmon does not handle.
func Decode(event string, body []byte) (o observation.Observation, ok bool, err error) {
	o = observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_WEBHOOK}
	var b broadcaster
	switch event {
	case EventStatusUpdated:
		var p statusPayload
		if err := json.Unmarshal(body, &p); err != nil {
			return o, false, fmt.Errorf("decode %s: %w", event, err)
		}
		if p.IsLive == nil {
			return o, false, fmt.Errorf("decode %s: is_live missing", event)
		}
		if o.StartedAt, err = parseTime("started_at", p.StartedAt); err != nil {
			return o, false, err
		}
		if o.EndedAt, err = parseTime("ended_at", p.EndedAt); err != nil {
			return o, false, err
		}
		o.Live, o.KickTime = observation.Offline, o.EndedAt
		if *p.IsLive {
			o.Live, o.KickTime, o.EndedAt = observation.Live, o.StartedAt, time.Time{}
		}
		if p.Title != nil {
			o.HasTitle, o.Title = true, *p.Title
		}
		b = p.Broadcaster
	case EventMetadataUpdated:
		var p metadataPayload
		if err := json.Unmarshal(body, &p); err != nil {
			return o, false, fmt.Errorf("decode %s: %w", event, err)
		}
		if t := p.Metadata.Title; t != nil {
			o.HasTitle, o.Title = true, *t
		}
		if c := p.Metadata.Category; c != nil && (c.ID != 0 || c.Name != "") {
			o.HasCategory, o.CategoryID, o.CategoryName = true, int64(c.ID), c.Name
		}
		b = p.Broadcaster
	default:
		return o, false, nil
	}
	if b.UserID <= 0 {
		return o, false, fmt.Errorf("decode %s: broadcaster.user_id missing", event)
	}
	o.UserID, o.Slug = int64(b.UserID), b.ChannelSlug
	return o, true, nil
}

// TLSFiles are KICKMON_WEBHOOK_TLS_CERT and _KEY: PEM files of a
// certificate (chain) and its key, for a receiver with no proxy in front.
type TLSFiles struct{ Cert, Key string }

// Serve serves the handler on ln at POST /webhooks/kick (404 elsewhere)
// until ctx ends, then shuts down gracefully within 5 s, after which it
// closes the connections still open. It serves HTTPS when tlsFiles is set.
// It returns nil after a cancelled context and a graceful shutdown.
func (h *Handler) Serve(ctx context.Context, ln net.Listener, tlsFiles *TLSFiles) error {
	scheme := "http"
	if tlsFiles != nil {
		cert, err := tls.LoadX509KeyPair(tlsFiles.Cert, tlsFiles.Key)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("webhook: TLS certificate %s and key %s: %w", tlsFiles.Cert, tlsFiles.Key, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	} else if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		h.log.Warn("webhook receiver listens on a non-loopback address without TLS: put a TLS proxy in front or set KICKMON_WEBHOOK_TLS_CERT and KICKMON_WEBHOOK_TLS_KEY",
			logkeys.Addr, ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // ends when srv shuts down below
	h.log.Info("webhook receiver listening", logkeys.Addr, ln.Addr().String(), logkeys.Scheme, scheme)
	select {
	case err := <-errc:
		return fmt.Errorf("webhook: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), h.shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// A handler still waits (for the engine to take its observation):
		// closing its connection cancels its request, so it forgets the
		// message id and returns; Kick, without a 200, redelivers.
		_ = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("webhook: shutdown: %w", err)
	}
	return nil
}

// ListenAndServe listens on addr (KICKMON_WEBHOOK_ADDR) and serves until
// ctx ends, over TLS when tlsFiles is set.
func (h *Handler) ListenAndServe(ctx context.Context, addr string, tlsFiles *TLSFiles) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("webhook: listen %s: %w", addr, err)
	}
	return h.Serve(ctx, ln, tlsFiles)
}
