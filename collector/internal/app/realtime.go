package app

import (
	"log/slog"
	"net/http"

	"github.com/kickmon/kickmon/collector/internal/centrifugo"
	"github.com/kickmon/kickmon/collector/internal/config"
	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/pusher"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// newRealtime builds the realtime Manager and its two providers from the
// configuration (KICK_REALTIME, KICK_WEB_URL, KICK_PUSHER_URL,
// KICK_CENTRIFUGO_URL, KICK_REALTIME_ORIGIN).
func newRealtime(cfg *config.Config, out chan<- observation.Observation, checker observation.Checker, log *slog.Logger) (*realtime.Manager, error) {
	header := http.Header{"User-Agent": {kickrest.UserAgent()}}
	var neg *realtime.Negotiator
	if cfg.WebURL != "" {
		neg = &realtime.Negotiator{WebURL: cfg.WebURL, Origin: cfg.RealtimeOrigin, Header: header}
	}
	return realtime.NewManager(realtime.Options{
		Mode: cfg.Realtime, Negotiator: neg, PusherURL: cfg.PusherURL, CentrifugoURL: cfg.CentrifugoURL,
		AllowInsecure: cfg.AllowInsecure, Out: out, Logger: log,
		New: map[string]realtime.Factory{
			realtime.Pusher: func(s realtime.Start) (realtime.Provider, error) {
				return pusher.New(pusher.Options{
					URL: s.Offer.URL, ChannelsPerSocket: cfg.ChannelsPerSocket, Out: out, Checker: checker, Logger: log,
					Header: header, Counters: s.Counters, Reconcile: s.Reconcile, Note: s.Note, EndOnStop: true,
				})
			},
			realtime.Centrifugo: func(s realtime.Start) (realtime.Provider, error) {
				return centrifugo.New(centrifugo.Options{
					URL: s.Offer.URL, Token: s.Token, Origin: cfg.RealtimeOrigin, Header: header,
					ChannelsPerSocket: cfg.ChannelsPerSocket, Out: out, Checker: checker, Logger: log,
					Counters: s.Counters, Reconcile: s.Reconcile, Note: s.Note,
				})
			},
		},
	})
}

// isRealtime reports whether source is a provider of Kick's realtime feed.
func isRealtime(source kickmonv1.Source) bool {
	return source == kickmonv1.Source_SOURCE_PUSHER || source == kickmonv1.Source_SOURCE_CENTRIFUGO
}
