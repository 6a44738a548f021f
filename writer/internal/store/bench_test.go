package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

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
