// Package viewtest holds test helpers shared by the viewer's packages: a
// quickly reconnecting client for kickapitest, streamer and event builders,
// and deadline polling.
package viewtest

import (
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Dial connects to the fake with a short reconnect backoff, so tests that
// stop and start the fake recover in well under a second.
func Dial(t testing.TB, srv *kickapitest.Server) *kickapi.Conn {
	t.Helper()
	c, err := kickapi.Dial(srv.Path(), grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 100 * time.Millisecond},
		MinConnectTimeout: time.Second,
	}))
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Path(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Streamer builds a streamer; state is "live", "offline" or "unknown".
func Streamer(id int64, slug, state string, viewers int64, title, category string) *kickmonv1.Streamer {
	st := &kickmonv1.Streamer{
		BroadcasterUserId: id,
		Slug:              slug,
		Title:             title,
		CategoryName:      category,
		ViewerCount:       viewers,
		LastConfirmedAt:   timestamppb.New(time.Now().Add(-5 * time.Second)),
	}
	switch state {
	case "live":
		st.State = kickmonv1.LiveState_LIVE_STATE_LIVE
		st.LiveSince = timestamppb.New(time.Now().Add(-90 * time.Minute))
	case "offline":
		st.State = kickmonv1.LiveState_LIVE_STATE_OFFLINE
	default:
		st.State = kickmonv1.LiveState_LIVE_STATE_UNKNOWN
	}
	return st
}

// Event builds an event of kind carrying st.
func Event(kind kickmonv1.EventKind, st *kickmonv1.Streamer) *kickmonv1.Event {
	return &kickmonv1.Event{Kind: kind, Streamer: st, Source: kickmonv1.Source_SOURCE_POLL}
}

// Started is a STREAM_STARTED event that makes st live.
func Started(st *kickmonv1.Streamer) *kickmonv1.Event {
	st.State = kickmonv1.LiveState_LIVE_STATE_LIVE
	st.LiveSince = timestamppb.Now()
	return Event(kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, st)
}

// Ended is a STREAM_ENDED event that makes st offline.
func Ended(st *kickmonv1.Streamer) *kickmonv1.Event {
	st.State = kickmonv1.LiveState_LIVE_STATE_OFFLINE
	st.LiveSince = nil
	st.ViewerCount = 0
	return Event(kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED, st)
}

// Wait polls cond until it holds or the deadline passes; then it fails the
// test with what describe says about the last state.
func Wait(t testing.TB, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen:\n%s", what, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
