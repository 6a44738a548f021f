package centrifugo_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/centrifugo"
	"github.com/kickmon/kickmon/collector/internal/centrifugo/centrifugotest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/realtime"
)

// BenchmarkSubscribeCalls measures how long N Subscribe calls take on a
// running client (what the engine's restore does for every streamer with a
// channel id at a cold start): the caller's time only, not the server's
// confirmations.
//
// Run with: go test -run '^$' -bench SubscribeCalls -benchtime 1x ./internal/centrifugo/
func BenchmarkSubscribeCalls(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			srv := centrifugotest.Start(b, centrifugotest.Options{})
			for b.Loop() {
				out := make(chan observation.Observation, 1024)
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					for range out {
					}
				}()
				c, err := centrifugo.New(centrifugo.Options{
					URL: srv.URL, Origin: realtime.DefaultOrigin, Out: out, Checker: nopChecker{}, Logger: slog.New(slog.DiscardHandler),
					Token: func(context.Context) (string, error) { return srv.Token("kickmon-bench", time.Hour), nil },
				})
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- c.Run(ctx) }()
				t0 := time.Now()
				for i := range n {
					c.Subscribe(int64(1_000_000+i), int64(i+1))
				}
				b.ReportMetric(float64(time.Since(t0).Milliseconds()), "subscribe-ms")
				cancel()
				<-done
				close(out)
			}
		})
	}
}

type nopChecker struct{}

func (nopChecker) CheckNow(...int64) {}
