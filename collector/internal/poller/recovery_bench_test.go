package poller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/kicksim"
)

// BenchmarkRecoveryAfterOutage measures, with the production defaults and
// kicksim, the time from Kick's first good answer after an outage of
// 503s to the first full round (every streamer observed again), at 2 s and
// 60 s poll intervals. Each sample takes more than 3 minutes, so it runs
// only when asked (it would add minutes to make bench):
//
//	KICKMON_BENCH_RECOVERY=1 go test -run '^$' -bench RecoveryAfterOutage -benchtime 3x ./collector/internal/poller/
//
// The outage lasts long enough for the backoff to reach its cap.
func BenchmarkRecoveryAfterOutage(b *testing.B) {
	if os.Getenv("KICKMON_BENCH_RECOVERY") == "" {
		b.Skip("takes minutes: set KICKMON_BENCH_RECOVERY=1 to run it")
	}
	for _, iv := range []time.Duration{2 * time.Second, 60 * time.Second} {
		b.Run(fmt.Sprintf("interval=%s", iv), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += recoveryOnce(b, iv, 3*time.Minute)
			}
			b.ReportMetric((total / time.Duration(b.N)).Seconds(), "s-to-full-round")
		})
	}
}

func recoveryOnce(b *testing.B, interval, outage time.Duration) time.Duration {
	sim := kicksim.Start(b, kicksim.WithStreamers(50))
	out := make(chan observation.Observation, 1024)
	p, err := New(simClient(b, sim), Options{Interval: interval, Out: out, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	users := map[int64]bool{}
	for _, s := range sim.Streamers() {
		p.Watch(s.UserID, 0)
		users[s.UserID] = true
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	sim.FailNext(kicksim.EndpointChannels, 1<<30, kicksim.Fault503)
	time.Sleep(outage)
	sim.ClearFaults()
	healed := time.Now()
	seen := map[int64]bool{}
	for len(seen) < len(users) {
		select {
		case o := <-out:
			if o.Kind == observation.Status && o.ObservedAt.After(healed) {
				seen[o.UserID] = true
			}
		case <-time.After(30 * time.Minute):
			b.Fatalf("no full round 30 minutes after the outage (%d of %d seen)", len(seen), len(users))
		}
	}
	d := time.Since(healed)
	b.Logf("interval %s, outage %s: first full round %.1fs after Kick answered again", interval, outage, d.Seconds())
	return d
}
