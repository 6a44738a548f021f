package kickrest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

func idValues(name string, ids []int64) url.Values {
	q := url.Values{}
	for _, id := range ids {
		q.Add(name, strconv.FormatInt(id, 10))
	}
	return q
}

func tooMany(endpoint string, n, limit int) error {
	return &Error{Kind: BadRequest, Endpoint: endpoint, Err: fmt.Errorf("%d values, at most %d per request", n, limit)}
}

// Channels returns the channels of up to MaxChannelIDs broadcaster user
// ids (GET /public/v1/channels?broadcaster_user_id=…). Unknown ids are
// simply absent.
func (c *Client) Channels(ctx context.Context, userIDs []int64) ([]Channel, error) {
	const ep = "channels"
	if len(userIDs) == 0 {
		return nil, nil
	}
	if len(userIDs) > MaxChannelIDs {
		return nil, tooMany(ep, len(userIDs), MaxChannelIDs)
	}
	return c.channels(ctx, ep, idValues("broadcaster_user_id", userIDs))
}

// ChannelsBySlug returns the channels of up to MaxChannelIDs slugs (GET
// /public/v1/channels?slug=…). Kick may fail the whole request with a 400
// (BadRequest) when one slug is unknown.
func (c *Client) ChannelsBySlug(ctx context.Context, slugs []string) ([]Channel, error) {
	const ep = "channels"
	if len(slugs) == 0 {
		return nil, nil
	}
	if len(slugs) > MaxChannelIDs {
		return nil, tooMany(ep, len(slugs), MaxChannelIDs)
	}
	return c.channels(ctx, ep, url.Values{"slug": slugs})
}

func (c *Client) channels(ctx context.Context, ep string, q url.Values) ([]Channel, error) {
	out, date, err := fetch(ctx, c, call{endpoint: ep, method: http.MethodGet, path: "/public/v1/channels", query: q}, DecodeChannels)
	for i := range out {
		out[i].ServerTime = date
	}
	return out, err
}

// fetch performs cl and decodes its body; it also returns the Date header.
func fetch[T any](ctx context.Context, c *Client, cl call, decode func([]byte) (T, error)) (T, time.Time, error) {
	var zero T
	res, err := c.do(ctx, cl)
	if err != nil {
		return zero, time.Time{}, err
	}
	defer res.release()
	out, err := decode(res.body)
	if err != nil {
		return zero, time.Time{}, badResponse(cl.endpoint, res.body, err)
	}
	return out, res.date, nil
}

// Livestreams returns the live streams among up to MaxLivestreamIDs
// broadcaster user ids (the deprecated GET /public/v1/livestreams, the only
// official source of channel_id). Offline streamers are absent.
func (c *Client) Livestreams(ctx context.Context, userIDs []int64) ([]Livestream, error) {
	const ep = "livestreams"
	if len(userIDs) == 0 {
		return nil, nil
	}
	if len(userIDs) > MaxLivestreamIDs {
		return nil, tooMany(ep, len(userIDs), MaxLivestreamIDs)
	}
	q := idValues("broadcaster_user_id", userIDs)
	q.Set("limit", "100") // the default 25 could cut a batch of 50 short
	out, _, err := fetch(ctx, c, call{endpoint: ep, method: http.MethodGet, path: "/public/v1/livestreams", query: q}, DecodeLivestreams)
	return out, err
}

// PublicKey returns the PEM of the key that signs Kick's webhooks (GET
// /public/v1/public-key).
func (c *Client) PublicKey(ctx context.Context) (string, error) {
	key, _, err := fetch(ctx, c, call{endpoint: "public-key", method: http.MethodGet, path: "/public/v1/public-key"}, func(b []byte) (string, error) {
		k, err := DecodePublicKey(b)
		if err == nil && k == "" {
			err = errors.New("empty public_key")
		}
		return k, err
	})
	return key, err
}

const subscriptionsPath = "/public/v1/events/subscriptions"

// Subscriptions lists the app's event subscriptions (GET
// /public/v1/events/subscriptions).
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	out, _, err := fetch(ctx, c, call{endpoint: "subscriptions", method: http.MethodGet, path: subscriptionsPath}, DecodeSubscriptions)
	return out, err
}

// CreateSubscription subscribes the app to events of one broadcaster by
// webhook (POST /public/v1/events/subscriptions). Kick reports failures per
// event in SubscriptionResult.Error.
func (c *Client) CreateSubscription(ctx context.Context, userID int64, events []EventSpec) ([]SubscriptionResult, error) {
	const ep = "subscriptions"
	if userID <= 0 || len(events) == 0 {
		return nil, &Error{Kind: BadRequest, Endpoint: ep, Err: errors.New("need a broadcaster user id and at least one event")}
	}
	body, err := subscribeBody{BroadcasterUserID: userID, Events: events, Method: "webhook"}.marshal()
	if err != nil {
		return nil, &Error{Kind: BadRequest, Endpoint: ep, Err: err}
	}
	out, _, err := fetch(ctx, c, call{endpoint: ep, method: http.MethodPost, path: subscriptionsPath, body: body}, DecodeSubscriptionResults)
	return out, err
}
