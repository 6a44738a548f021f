package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
)

// BenchmarkStoreWrite measures Store.Write alone (no gRPC; encoding
// included, not pipelined) by events per transaction, on 1000 streamers;
// it reports events/s. On the shared 2-core machine (load ~2.2), before
// (e022946) → after in one run: 1000 events 22-27k → 43-45k, 5000 events
// 50-54k → 95-100k; one event ~1k either way (±25% noise).
func BenchmarkStoreWrite(b *testing.B) {
	for _, size := range []int{1, 10, 100, 1000, 5000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			db := writertest.NewDB(b)
			st, err := store.Open(context.Background(), db.URL, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			next := uint64(1)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				evs := writertest.Updates(next, size, 1000)
				next += uint64(size)
				b.StartTimer()
				if _, err := st.Write(context.Background(), batch.Pending{Events: evs}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkOutbox measures Store.Write with the notification outbox on and
// off, interleaved batch by batch on two databases (so the shared
// machine's load drift hits both alike), by events per transaction, on two
// loads: "every" (every event a title change while live, the worst case)
// and "realistic" (viewer updates, one event in 100 a title change). It
// reports events/s of each, their ratio and the jobs enqueued per second.
//
//	go test -run '^$' -bench BenchmarkOutbox -benchtime 20x ./internal/store/
//
// On the shared 2-core machine (load 8-11), on/off: realistic 5000-event
// flushes 1.00, 0.89, 0.99; 100-event flushes 0.86, 0.78, 0.45 (noise:
// a flush with a job costs ~1.1 ms more); every event a title change:
// 5000 → 0.15-0.26 (~1.2k jobs/s), 100 → 0.26-0.33. River's InsertManyTx
// costs ~0.9 ms a flush for one job and ~180 µs a job in bulk (GIN
// indexes on args, which hold the whole event).
func BenchmarkOutbox(b *testing.B) {
	for _, load := range []string{"every", "realistic"} {
		for _, size := range []int{100, 5000} {
			b.Run(fmt.Sprintf("load=%s/events=%d", load, size), func(b *testing.B) {
				open := func(outbox bool) *store.Store {
					db := writertest.NewDB(b)
					st, err := store.Open(context.Background(), db.URL, slog.New(slog.DiscardHandler))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(st.Close)
					if !outbox {
						st.DisableOutbox()
					}
					first := writertest.Updates(1, 1000, 1000) // title changes then compare with stored rows
					for _, e := range first {
						e.Streamer.Title = "steady"
					}
					if _, err := st.Write(context.Background(), batch.Pending{Events: first}); err != nil {
						b.Fatal(err)
					}
					return st
				}
				stores := []*store.Store{open(false), open(true)}
				var took [2]time.Duration
				next := uint64(1001)
				b.ResetTimer()
				for n := range b.N {
					evs := writertest.Updates(next, size, 1000)
					for _, e := range evs {
						e.Streamer.Title = fmt.Sprint("title ", e.GetSeq()) // every event a new title…
						if load == "realistic" && e.GetSeq()%100 != 0 {
							e.Streamer.Title = "steady" // …or one in 100
						}
					}
					next += uint64(size)
					for k := range stores {
						i := (k + n) % 2 // alternate which goes first
						st := stores[i]
						start := time.Now()
						if _, err := st.Write(context.Background(), batch.Pending{Events: evs}); err != nil {
							b.Fatal(err)
						}
						took[i] += time.Since(start)
					}
				}
				b.StopTimer()
				var jobs int64
				if err := stores[1].Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+store.RiverSchema+`.river_job`).Scan(&jobs); err != nil {
					b.Fatal(err)
				}
				off, on := float64(b.N*size)/took[0].Seconds(), float64(b.N*size)/took[1].Seconds()
				b.ReportMetric(off, "off-events/s")
				b.ReportMetric(on, "on-events/s")
				b.ReportMetric(on/off, "on/off")
				b.ReportMetric(float64(jobs)/took[1].Seconds(), "jobs/s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
