package pusher

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	"github.com/kickmon/kickmon/collector/kicksim"
)

// BenchmarkSubscribeFanIn measures, against kicksim on loopback, for N
// channels sharded at P channels per socket:
//
//   - subscribe-ms: from the first Subscribe until the sim holds every
//     subscription;
//   - fanin-ev/s: N go-live events, from the first GoLive until the N-th
//     observation leaves the client;
//   - resub-ms: after every socket is dropped, until every channel is
//     subscribed again (the reconnect burst);
//   - overflows: reconnects before the drop: sockets the sim closed with 4100
//     because its per-socket send queue (4096 frames, like a real server's
//     buffer) overflowed during the burst;
//   - lost-ev: go-live events never observed because of those overflows
//     (fanin-ev/s then counts only the complete rounds).
//
// Run with: go test -run '^$' -bench SubscribeFanIn -benchtime 1x ./internal/pusher/
func BenchmarkSubscribeFanIn(b *testing.B) {
	for _, n := range []int{1000, 5000, 20000} {
		for _, p := range []int{100, 250, 500, 1000, 5000, 20000} {
			if p > n {
				continue
			}
			b.Run(fmt.Sprintf("channels=%d/per_socket=%d", n, p), func(b *testing.B) {
				benchFanIn(b, n, p)
			})
		}
	}
}

func benchFanIn(b *testing.B, n, perSocket int) {
	sim := kicksim.Start(b, kicksim.WithStreamers(n))
	streamers := sim.Streamers()
	var subMS, resubMS, evps, overflows, lost float64
	for b.Loop() {
		out := make(chan observation.Observation, 1024)
		c, err := New(Options{URL: sim.PusherURL(), Out: out, ChannelsPerSocket: perSocket, Logger: slog.New(slog.DiscardHandler),
			BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		// Coverage observations of reconnects are drained with the rest.
		statusSeen := make(chan int, 1)
		go func() {
			seen := 0
			for o := range out {
				if o.Kind == observation.Status {
					seen++
					if seen == n {
						statusSeen <- seen
					}
				}
			}
		}()
		allSubscribed := func() {
			i := 0 // streamers[:i] are subscribed
			testwait.For(b, 2*time.Minute, "every channel subscribed", func() bool {
				for i < len(streamers) && sim.Subscriptions(channelName(streamers[i].ChannelID)) == 1 {
					i++
				}
				return i == len(streamers)
			})
		}
		t0 := time.Now()
		for _, st := range streamers {
			c.Subscribe(st.ChannelID, st.UserID)
		}
		allSubscribed()
		subMS += float64(time.Since(t0).Milliseconds())

		t0 = time.Now()
		for _, st := range streamers {
			if err := sim.GoLive(st.UserID); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-statusSeen:
			evps += float64(n) / time.Since(t0).Seconds()
		case <-time.After(30 * time.Second):
			// The sim closed sockets whose send queue overflowed (4100):
			// Pusher does not replay, the events are lost.
			lost += float64(n) - float64(c.Stats().Observations)
		}
		for _, st := range c.Status() {
			overflows += float64(st.Reconnects)
		}

		t0 = time.Now()
		sim.DropSockets()
		testwait.For(b, 2*time.Minute, "every socket reconnected", func() bool {
			for _, st := range c.Status() {
				if st.Reconnects == 0 || st.State != StateConnected {
					return false
				}
			}
			return true
		})
		allSubscribed()
		resubMS += float64(time.Since(t0).Milliseconds())
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		close(out)
		// The sim must forget the old sockets, or the next round's
		// allSubscribed would count their subscriptions.
		testwait.For(b, time.Minute, "the sim to forget the old sockets", func() bool { return sim.Sockets() == 0 })
		for _, st := range streamers {
			if err := sim.GoOffline(st.UserID); err != nil {
				b.Fatal(err)
			}
		}
	}
	runs := float64(b.N)
	b.ReportMetric(subMS/runs, "subscribe-ms")
	b.ReportMetric(evps/runs, "fanin-ev/s")
	b.ReportMetric(resubMS/runs, "resub-ms")
	b.ReportMetric(overflows/runs, "overflows")
	b.ReportMetric(lost/runs, "lost-ev")
	b.ReportMetric(float64((n+perSocket-1)/perSocket), "sockets")
}
