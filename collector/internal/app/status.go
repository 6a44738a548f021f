package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	healthOK       = kickmonv1.Health_HEALTH_OK
	healthDegraded = kickmonv1.Health_HEALTH_DEGRADED
)

// The gRPC server's Backend: the engine answers, the app adds status.

func (c *collector) List(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error) {
	return c.engine.List(ctx, req)
}

func (c *collector) Get(ctx context.Context, slug string, userID int64) (*kickmonv1.Streamer, error) {
	return c.engine.Get(ctx, slug, userID)
}

func (c *collector) Add(ctx context.Context, slugs []string, channelID int64) ([]*kickmonv1.StreamerResult, error) {
	res, err := c.engine.Add(ctx, slugs, channelID)
	if err == nil {
		c.wakeHooks()
	}
	return res, err
}

// wakeHooks has the webhook repairer subscribe new streamers now, not at
// its next interval.
func (c *collector) wakeHooks() {
	if c.hookWake == nil {
		return
	}
	select {
	case c.hookWake <- struct{}{}:
	default: // a repair is already due
	}
}

func (c *collector) Remove(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error) {
	return c.engine.Remove(ctx, slugs)
}

func (c *collector) Refresh(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error) {
	return c.engine.Refresh(ctx, slugs)
}

func (c *collector) Status(ctx context.Context) (*kickmonv1.CollectorStatus, error) {
	return c.statusSnapshot(), nil
}

// resolve resolves slugs through the official API.
func (c *collector) resolve(ctx context.Context, slugs []string) []poller.Resolution {
	return poller.NewResolver(c.client, c.log).Resolve(ctx, slugs)
}

// isPermanent tells a slug that will never resolve from a passing failure.
func isPermanent(err error) bool {
	return errors.Is(err, poller.ErrInvalidSlug) || errors.Is(err, poller.ErrUnknownSlug)
}

// watchedIDs lists the watched user ids (for the webhook repairer).
func (c *collector) watchedIDs() []int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.engine.List(ctx, &kickmonv1.ListStreamersRequest{ConfirmationsOnly: true}) // ids are all it needs
	if err != nil {
		return nil
	}
	list := res.GetStreamers()
	ids := make([]int64, len(list))
	for i, s := range list {
		ids[i] = s.GetBroadcasterUserId()
	}
	return ids
}

// statusSnapshot describes sources, sockets, token, budget and spool without
// touching the engine loop (metrics scrapes must not queue behind it).
func (c *collector) statusSnapshot() *kickmonv1.CollectorStatus {
	ps, budget := c.poller.Status(), c.client.Budget()
	st := &kickmonv1.CollectorStatus{
		Version:      version(),
		StartedAt:    timestamppb.New(c.started),
		PollInterval: durationpb.New(c.cfg.PollInterval),
		Token:        tokenStatus(c.client.TokenStatus()),
		Budget: &kickmonv1.BudgetStatus{
			RequestsPerMinute: int64(budget.Limit),
			UsedLastMinute:    int64(budget.UsedWindow),
			RateLimitedTotal:  ps.RateLimitedTotal,
			BackoffUntil:      ts(ps.BackoffUntil),
		},
		Spool:    c.spool.Status(),
		Watchers: int32(c.server.Watchers()),
	}
	st.Streamers, st.Live = c.engine.Counts()
	st.Sources = append(st.Sources, pollStatus(ps))
	st.Sources = append(st.Sources, c.realtimeStatus(st, ps.Streamers))
	st.Sources = append(st.Sources, c.webhookStatus())
	st.Webhooks = c.webhooksStatus()
	if skew, ok := c.client.ClockSkew(); ok {
		st.KickClockSkew = durationpb.New(skew)
	}
	return st
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tokenStatus(t kickrest.TokenStatus) *kickmonv1.TokenStatus {
	return &kickmonv1.TokenStatus{Valid: t.Valid, ExpiresAt: ts(t.ExpiresAt), Renewals: t.Renewals, LastError: t.LastError}
}

func pollStatus(ps poller.Status) *kickmonv1.SourceStatus {
	health := map[poller.Health]kickmonv1.Health{
		poller.HealthOK:          kickmonv1.Health_HEALTH_OK,
		poller.HealthDegraded:    kickmonv1.Health_HEALTH_DEGRADED,
		poller.HealthRateLimited: kickmonv1.Health_HEALTH_RATE_LIMITED,
		poller.HealthBlocked:     kickmonv1.Health_HEALTH_BLOCKED,
		poller.HealthDown:        kickmonv1.Health_HEALTH_DOWN,
	}[ps.Health]
	if health == kickmonv1.Health_HEALTH_UNSPECIFIED {
		health = kickmonv1.Health_HEALTH_DEGRADED
	}
	var breakers []string
	for ep, state := range ps.Breakers {
		breakers = append(breakers, ep+"="+state)
	}
	slices.Sort(breakers)
	detail := fmt.Sprintf("%d of %d streamers covered, every %s", ps.Covered, ps.Streamers, ps.Interval)
	if ps.Blind {
		detail = "blind: " + ps.BlindReason
	}
	return &kickmonv1.SourceStatus{
		Source: kickmonv1.Source_SOURCE_POLL, Health: health, Detail: detail,
		LastSuccessAt: ts(ps.LastSuccess), LastError: ps.LastErrorText, LastErrorAt: ts(ps.LastError),
		BreakerState: strings.Join(breakers, " "), StreamersCovered: int64(ps.Covered),
	}
}

// realtimeStatus fills st.Realtime and st.Sockets and returns the realtime
// feed's source entry, named for the provider in use (or the one tried).
func (c *collector) realtimeStatus(st *kickmonv1.CollectorStatus, watched int) *kickmonv1.SourceStatus {
	if c.realtime == nil {
		st.Realtime = &kickmonv1.RealtimeStatus{Mode: realtime.ModeOff, Health: kickmonv1.Health_HEALTH_DISABLED, BlindReason: "KICK_REALTIME=off"}
		return &kickmonv1.SourceStatus{Source: kickmonv1.Source_SOURCE_PUSHER, Health: kickmonv1.Health_HEALTH_DISABLED, Detail: "KICK_REALTIME=off"}
	}
	rs := c.realtime.Status()
	health := map[realtime.Health]kickmonv1.Health{
		realtime.HealthOK: kickmonv1.Health_HEALTH_OK, realtime.HealthDegraded: kickmonv1.Health_HEALTH_DEGRADED,
		realtime.HealthDown: kickmonv1.Health_HEALTH_DOWN, realtime.HealthDisabled: kickmonv1.Health_HEALTH_DISABLED,
	}[rs.Health]
	name := cmp.Or(rs.Running, rs.Provider)
	for _, s := range rs.Sockets {
		st.Sockets = append(st.Sockets, &kickmonv1.SocketStatus{
			Id: int32(s.ID), State: string(s.State), Channels: int32(s.Channels),
			ConnectedSince: ts(s.ConnectedSince), Reconnects: int64(s.Reconnects),
			LastCloseCode: int32(s.LastCloseCode), LastError: s.LastError, Provider: name,
		})
	}
	blind := int64(max(watched-rs.Channels, 0))
	if rs.Health == realtime.HealthDown {
		blind = int64(watched)
	}
	st.Realtime = &kickmonv1.RealtimeStatus{
		Mode: rs.Mode, Provider: rs.Provider, ProviderSince: ts(rs.Since), Health: health,
		BlindReason: rs.BlindReason, Negotiated: rs.Negotiated,
		LastNegotiationAt: ts(rs.LastNegotiation), LastNegotiationError: rs.LastNegotiationError,
		StreamersBlind: blind, TokenExpiresAt: ts(rs.TokenExpiresAt),
	}
	out := &kickmonv1.SourceStatus{Source: realtime.SourceOf(name), Health: health, StreamersCovered: int64(rs.Channels)}
	if name == "" && rs.Mode == realtime.ModePusher {
		out.Source = kickmonv1.Source_SOURCE_PUSHER
	} else if name == "" {
		out.Source = kickmonv1.Source_SOURCE_CENTRIFUGO
	}
	up := 0
	for _, s := range rs.Sockets {
		if s.State == realtime.StateConnected {
			up++
		}
		if s.LastError != "" {
			out.LastError = s.LastError
		}
	}
	how := "negotiated"
	if !rs.Negotiated {
		how = "fallback URL"
	}
	switch {
	case rs.BlindReason != "":
		out.Detail = "blind: " + rs.BlindReason
	case len(rs.Sockets) == 0:
		out.Detail = fmt.Sprintf("%s (%s) since %s: no channel ids known yet", name, how, rs.Since.UTC().Format(time.RFC3339))
	default:
		out.Detail = fmt.Sprintf("%s (%s) since %s: %d/%d sockets connected, %d channels", name, how, rs.Since.UTC().Format(time.RFC3339), up, len(rs.Sockets), rs.Channels)
	}
	if out.LastError == "" {
		out.LastError = rs.LastNegotiationError
	}
	return out
}

func (c *collector) webhookStatus() *kickmonv1.SourceStatus {
	out := &kickmonv1.SourceStatus{Source: kickmonv1.Source_SOURCE_WEBHOOK}
	if c.hooks == nil {
		out.Health, out.Detail = kickmonv1.Health_HEALTH_DISABLED, "KICKMON_WEBHOOK_ADDR is empty"
		return out
	}
	s := c.hooks.Stats()
	out.Health = kickmonv1.Health_HEALTH_OK
	out.Detail = fmt.Sprintf("on %s: %d accepted, %d duplicates, %d bad signatures, %d stale", c.cfg.WebhookAddr, s.Accepted, s.Duplicates, s.BadSig, s.Stale)
	out.LastSuccessAt = ts(s.LastDelivery)
	if c.repairer != nil {
		r := c.repairer.Status()
		out.LastError = r.LastError
		switch {
		case r.CapReached:
			out.Health = kickmonv1.Health_HEALTH_DEGRADED
			out.Detail += fmt.Sprintf("; Kick's subscription limit reached: %d streamers unsubscribed", r.Unsubscribed)
		case r.Unsubscribed > 0:
			out.Health = kickmonv1.Health_HEALTH_DEGRADED
			out.Detail += fmt.Sprintf("; %d streamers not subscribed", r.Unsubscribed)
		}
		if r.Dropped > 0 {
			out.Detail += fmt.Sprintf("; %d subscriptions dropped by Kick (auto-unsubscribed) and re-created", r.Dropped)
		}
	}
	return out
}

// webhooksStatus is CollectorStatus.webhooks (nil when webhooks are off).
func (c *collector) webhooksStatus() *kickmonv1.WebhookStatus {
	if c.hooks == nil || c.repairer == nil {
		return nil
	}
	r := c.repairer.Status()
	return &kickmonv1.WebhookStatus{Subscribed: r.Subscribed, Unsubscribed: r.Unsubscribed, CapReached: r.CapReached,
		LastDeliveryAt: ts(c.hooks.Stats().LastDelivery), LastError: r.LastError}
}

// statusLine is the STATUS= line systemctl status shows.
func (c *collector) statusLine(ctx context.Context) string {
	st, err := c.Status(ctx)
	if err != nil {
		return "status unavailable: " + err.Error()
	}
	var parts []string
	for _, s := range st.GetSources() {
		if s.GetHealth() == kickmonv1.Health_HEALTH_DISABLED {
			continue
		}
		name := strings.ToLower(strings.TrimPrefix(s.GetSource().String(), "SOURCE_"))
		parts = append(parts, name+" "+strings.ToLower(strings.TrimPrefix(s.GetHealth().String(), "HEALTH_")))
	}
	sp := st.GetSpool()
	return fmt.Sprintf("watching %d streamers, %d live; %s; seq %d, writer acked %d", st.GetStreamers(), st.GetLive(), strings.Join(parts, ", "), sp.GetLastSeq(), sp.GetAckedSeq())
}

// statusLoop refreshes the STATUS= line.
func (c *collector) statusLoop(ctx context.Context) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		line := c.statusLine(ctx)
		c.notify.Status(line)
		c.log.Debug("status", logkeys.StatusLine, line)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
