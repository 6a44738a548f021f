package monitor

import (
	"strconv"
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"

	"github.com/kickmon/kickmon/collector/internal/observation"
)

// BenchmarkObserve measures poll observations through Observe with 100k
// watched streamers: "offline" confirms an offline state (no event, the
// common case), "live viewers" changes a live streamer's viewer count (one
// STREAM_UPDATED with a cloned state each).
func BenchmarkObserve(b *testing.B) {
	const streamers = 100_000
	for _, bc := range []struct {
		name string
		live bool
	}{{"offline", false}, {"live viewers", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := New(Config{NewSessionID: seqIDs()})
			for i := range streamers {
				m.Add(Identity{UserID: int64(i + 1), Slug: "s" + string(rune('a'+i%26)) + strconv.Itoa(i), ChannelID: int64(i + 1)}, t0)
				o := observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_POLL, UserID: int64(i + 1), ObservedAt: t0, Live: observation.Offline}
				if bc.live {
					o.Live, o.StartedAt, o.HasTitle, o.Title = observation.Live, t0.Add(-time.Minute), true, "title"
				}
				m.Observe(o)
			}
			events := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				o := observation.Observation{
					Kind: observation.Status, Source: kickmonv1.Source_SOURCE_POLL, UserID: int64(i%streamers + 1),
					ObservedAt: t0.Add(time.Duration(i+1) * time.Millisecond), Live: observation.Offline,
				}
				if bc.live {
					o.Live, o.StartedAt, o.HasViewers, o.Viewers = observation.Live, t0.Add(-time.Minute), true, int64(i)
				}
				events += len(m.Observe(o).Events)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/obs")
		})
	}
}

// BenchmarkRestore measures a cold start's restore of 100k streamers (a
// third of them live) from the spool's snapshot: Restore, then the list
// of ids and channel ids the engine watches.
func BenchmarkRestore(b *testing.B) {
	const streamers = 100_000
	src := New(Config{NewSessionID: seqIDs()})
	for i := range streamers {
		src.Add(Identity{UserID: int64(i + 1), Slug: "s" + strconv.Itoa(i), ChannelID: int64(i + 1)}, t0)
		o := observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_POLL, UserID: int64(i + 1), ObservedAt: t0, Live: observation.Offline}
		if i%3 == 0 {
			o.Live, o.StartedAt, o.HasTitle, o.Title = observation.Live, t0.Add(-time.Minute), true, "title"
		}
		src.Observe(o)
	}
	snapshot := src.Streamers()
	for b.Loop() {
		b.StopTimer()
		fresh := make([]*kickmonv1.Streamer, len(snapshot)) // the spool decodes fresh ones
		for i, s := range snapshot {
			fresh[i] = clone(s)
		}
		m := New(Config{})
		b.StartTimer()
		m.Restore(fresh, t0.Add(time.Hour))
		if n := len(m.Watched()); n != streamers {
			b.Fatalf("%d watched", n)
		}
	}
}
