package monitor

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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

// BenchmarkMonitorMemory reports the live heap per watched streamer of a
// monitor with 100k streamers as the quiet world leaves them: every one
// confirmed by poll and realtime, a third live with a title and category.
func BenchmarkMonitorMemory(b *testing.B) {
	const streamers = 100_000
	var perStreamer float64
	for b.Loop() {
		before := heapAfterGC()
		m := New(Config{NewSessionID: seqIDs()})
		for i := range streamers {
			uid := int64(i + 1)
			m.Add(Identity{UserID: uid, Slug: "streamer_" + strconv.Itoa(i), ChannelID: uid}, t0)
			o := observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_POLL, UserID: uid, ObservedAt: t0.Add(time.Second), Live: observation.Offline}
			if i%3 == 0 {
				o.Live, o.StartedAt, o.HasTitle, o.Title = observation.Live, t0.Add(-time.Minute), true, "a stream title of some length"
				o.HasCategory, o.CategoryID, o.CategoryName = true, 15, "Just Chatting"
			}
			m.Observe(o)
			m.Observe(observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_CENTRIFUGO, UserID: uid, ObservedAt: t0.Add(2 * time.Second)})
		}
		perStreamer = float64(heapAfterGC()-before) / streamers
		if m.Len() != streamers {
			b.Fatalf("%d watched", m.Len())
		}
	}
	b.ReportMetric(perStreamer, "heap-B/streamer")
}

// heapAfterGC is the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkList measures what the writer's confirmation refresh costs the
// monitor at 100k streamers, half of them confirmed since the last list
// (a poll interval of 60 s, a refresh every 30 s): "full" is every full
// state (what the refresh read before confirmations_only and
// changed_since), "changes" the confirmation times of the changed half.
func BenchmarkList(b *testing.B) {
	const streamers = 100_000
	m := New(Config{NewSessionID: seqIDs()})
	confirm := func(uid int64, at time.Time) {
		m.Observe(observation.Observation{Kind: observation.Status, Source: kickmonv1.Source_SOURCE_POLL, UserID: uid, ObservedAt: at, Live: observation.Offline})
	}
	for i := range streamers {
		uid := int64(i + 1)
		m.Add(Identity{UserID: uid, Slug: "streamer_" + strconv.Itoa(i), ChannelID: uid}, t0)
		confirm(uid, t0.Add(time.Second))
	}
	since := m.Changes()
	for i := 0; i < streamers; i += 2 {
		confirm(int64(i+1), t0.Add(time.Minute))
	}
	for _, bc := range []struct {
		name              string
		since             uint64
		confirmationsOnly bool
	}{{"full", 0, false}, {"changes", since, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var bytes int
			for b.Loop() {
				list := m.List(bc.since, bc.confirmationsOnly)
				res := &kickmonv1.ListStreamersResponse{Streamers: list}
				wire, err := proto.Marshal(res) // what gRPC then sends
				if err != nil {
					b.Fatal(err)
				}
				bytes = len(wire)
			}
			b.ReportMetric(float64(bytes), "wire-B")
		})
	}
}
