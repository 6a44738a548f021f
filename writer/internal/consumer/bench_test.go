package consumer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/writer/internal/consumer"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
)

// BenchmarkWriter measures the whole pipeline (gRPC stream from a fake
// collector, batching, PostgreSQL, acks) on one pgtest database, in the
// same run: the batched writer (group commit, up to 5000 events a flush)
// against a one-row-per-transaction writer (size and cap 1). It reports
// events/s of each and their ratio.
//
//	go test -run '^$' -bench BenchmarkWriter -benchtime 3x ./internal/consumer/
func BenchmarkWriter(b *testing.B) {
	const (
		batchedEvents = 100_000
		singleEvents  = 3_000
		users         = 1_000
	)
	db := writertest.NewDB(b)
	st, err := store.Open(context.Background(), db.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fake := kickapitest.NewServer(b)
	conn := fake.Dial(b)

	// run publishes n events and measures how long the pipeline takes to
	// commit and acknowledge them.
	run := func(n int, opts consumer.Options) time.Duration {
		b.StopTimer()
		target := fake.LastSeq() + uint64(n)
		fake.Publish(writertest.Updates(0, n, users)...)
		c := consumer.New(conn, st, slog.New(slog.DiscardHandler), nil, opts)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- c.Run(ctx) }()
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer wcancel()
		if err := fake.WaitAcked(wctx, target); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		return took
	}

	var batched, single time.Duration
	var nb, ns int
	b.ResetTimer()
	for range b.N {
		batched += run(batchedEvents, consumer.Options{BatchSize: 10, MaxBatch: 5000, Interval: 100 * time.Millisecond})
		nb += batchedEvents
		single += run(singleEvents, consumer.Options{BatchSize: 1, MaxBatch: 1, Interval: 100 * time.Millisecond})
		ns += singleEvents
	}
	b.StopTimer()
	bRate := float64(nb) / batched.Seconds()
	sRate := float64(ns) / single.Seconds()
	b.ReportMetric(bRate, "batched-events/s")
	b.ReportMetric(sRate, "single-events/s")
	b.ReportMetric(bRate/sRate, "ratio")
	b.ReportMetric(0, "ns/op")
}
