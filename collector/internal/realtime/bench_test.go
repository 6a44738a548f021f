package realtime_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/centrifugo/centrifugotest"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	"github.com/kickmon/kickmon/collector/kicksim"
)

// BenchmarkManagerSubscribe is the engine's restore at a cold start: N
// Subscribe calls on a Manager whose negotiated Centrifugo provider runs
// against a real Centrifugo server.
//
//   - calls-ms: the caller's time for the N calls (the engine's loop, which
//     serves nothing until its restore returns).
//
// Run with: go test -run '^$' -bench ManagerSubscribe -benchtime 1x ./internal/realtime/
func BenchmarkManagerSubscribe(b *testing.B) {
	sim := kicksim.Start(b, kicksim.WithStreamers(1))
	cent := centrifugotest.Start(b, centrifugotest.Options{})
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			for b.Loop() {
				benchSubscribe(b, sim, cent, n)
			}
		})
	}
}

func benchSubscribe(b *testing.B, sim *kicksim.Sim, cent *centrifugotest.Server, n int) {
	e := newEnv(b, sim, cent, setup{offer: "centrifugo"})
	go func() { // the providers' observations (blind coverage of new sockets)
		for range e.out {
		}
	}()
	e.status(b, "Centrifugo in use", using(realtime.Centrifugo, true, 0))
	t0 := time.Now()
	for i := range n {
		e.m.Subscribe(int64(10_000_000+i), int64(i+1))
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "calls-ms")
}
