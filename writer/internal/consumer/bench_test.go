package consumer_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/writer/internal/consumer"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
)

// BenchmarkWriter measures the whole pipeline (gRPC stream from a fake
// collector, batching, PostgreSQL, acks) on one pgtest database, in the
// same run: the batched writer (group commit, up to 5000 events a flush,
// pipelined) against a one-row-per-transaction writer (size and cap 1). It
// reports events/s of each and their ratio, and the idle-load latency: the
// slowest of a few lone events from publication to acknowledgement, which
// the batch interval (100 ms) bounds.
//
//	go test -run '^$' -bench BenchmarkWriter -benchtime 3x ./internal/consumer/
//
// Measured on the 2-core development machine, shared with other engineers
// (load average 1.8-2.4), interleaved in one run with the code before the
// speed-up (e022946), 3 runs each of -benchtime 3x:
//
//	                    before              after
//	batched-events/s    47k 46k 50k         90k 78k 79k
//	single-events/s     1.07k 1.02k 1.10k   0.98k 1.22k 1.42k
//	ratio               44 46 45            92 64 55
//	idle-max-ms         -                   103 106 105 (interval 100 ms)
//
// Where the time goes: a 5000-event transaction (1000 streamers) keeps
// PostgreSQL's backend busy ~39 ms once encoded: COPY into status_events
// 28-30 ms (~5.8 µs an event: jsonb parsing ~2, the primary key and the
// per-streamer index ~2.5, heap and WAL the rest), the streamers and
// stream_sessions upserts ~4 ms each (HOT updates), commit and the small
// statements ~1.5 ms: a ceiling near 125k events/s. The writer's encoding
// (store.Prepare, ~9 ms of one core) overlaps the previous commit. At 80k/s
// a batch takes ~62 ms of wall clock, the rest being CPU the backend waits
// for: this process takes ~0.5 core (gRPC at both ends, Prepare, garbage
// collection) and the other engineers' jobs keep the load near 2. pgtest
// runs with fsync off, so commits are cheap here; on a real disk each
// commit also waits for a WAL flush, which only batching amortises
// (synchronous_commit stays on: durability is the point).
//
// Since then the notification outbox (River) enqueues a job for every
// event here (each one a title change while live): measured 2026-12-07
// (load 6-8, 3 runs each, interleaved), PostgreSQL's CPU is 38-45 µs an
// event with it and 13-14 µs with KICKMON_BENCH_OUTBOX=off, this process's
// 27-30 and 16-18 µs; batched 5.5k-8.8k events/s with it, 12k-49k
// without, as noisy as the load. Fewer round trips a flush (9 → 4) and
// acks off the flush path changed neither the CPU per event nor, within
// that noise, the rate: with 5000-event flushes the rows are the cost.
// With the outbox as a table (migration 004) instead of River jobs
// (load 9-11): PostgreSQL 19-22 µs an event, this process 18-22 µs,
// 12k-30k events/s. One backend at ~20 µs an event caps the batched rate
// near 50k/s even on an idle core.
// benchStore opens a store on a fresh database, closed when b ends;
// KICKMON_BENCH_OUTBOX=off leaves the notification outbox out.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	db := writertest.NewDB(b)
	st, err := store.Open(context.Background(), db.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	if os.Getenv("KICKMON_BENCH_OUTBOX") == "off" {
		st.DisableOutbox()
	}
	return st
}

func BenchmarkWriter(b *testing.B) {
	const (
		batchedEvents = 100_000
		singleEvents  = 3_000
		users         = 1_000
	)
	st := benchStore(b)
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

	// idle measures, on an idle batched pipeline, how long lone events
	// take from publication to acknowledgement; it returns the slowest.
	idle := func(opts consumer.Options) time.Duration {
		b.StopTimer()
		defer b.StartTimer()
		c := consumer.New(conn, st, slog.New(slog.DiscardHandler), nil, opts)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
		defer wcancel()
		var slowest time.Duration
		for range 5 {
			target := fake.LastSeq() + 1
			start := time.Now()
			fake.Publish(writertest.Updates(0, 1, users)...)
			if err := fake.WaitAcked(wctx, target); err != nil {
				b.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
		}
		return slowest
	}

	batchedOpts := consumer.Options{BatchSize: 10, MaxBatch: 5000, Interval: 100 * time.Millisecond}
	var batched, single, idleMax, selfCPU, pgCPU time.Duration
	var nb, ns int
	b.ResetTimer()
	for range b.N {
		self0, pg0 := cpuTimes(b, st)
		batched += run(batchedEvents, batchedOpts)
		nb += batchedEvents
		self1, pg1 := cpuTimes(b, st)
		selfCPU, pgCPU = selfCPU+self1-self0, pgCPU+pg1-pg0
		single += run(singleEvents, consumer.Options{BatchSize: 1, MaxBatch: 1, Interval: 100 * time.Millisecond})
		ns += singleEvents
		idleMax = max(idleMax, idle(batchedOpts))
	}
	b.StopTimer()
	bRate := float64(nb) / batched.Seconds()
	sRate := float64(ns) / single.Seconds()
	b.ReportMetric(bRate, "batched-events/s")
	b.ReportMetric(sRate, "single-events/s")
	b.ReportMetric(bRate/sRate, "ratio")
	b.ReportMetric(float64(idleMax.Microseconds())/1000, "idle-max-ms")
	b.ReportMetric(float64(selfCPU.Microseconds())/float64(nb), "batched-self-cpu-µs/event")
	b.ReportMetric(float64(pgCPU.Microseconds())/float64(nb), "batched-pg-cpu-µs/event")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkWriterLatency measures the pipeline at a steady rate like the
// system benchmark's (make bench-system, 10k changes/s over 10k
// streamers, about a third of the events going live or offline): a fake
// collector publishes rate events a second for 5 s, paced every 5 ms, to
// a writer with kickwriter's defaults; an event's latency is from its
// publication to the acknowledgement that covers it (after its commit).
// It reports p50, p99 and the largest latency, and the largest backlog
// (published, not acknowledged). Without the collector, kicksim and the
// polling of make bench-system on the machine, it isolates the writer and
// PostgreSQL.
//
// Measured 2026-12-07 with KICKMON_BENCH_OUTBOX=off (load 4.3-5.3, runs
// interleaved): p99 204 / 182 / 222 ms before the round trips a flush went
// from 9 to 4 and acks left the flush path (a584514), 52 / 151 / 426 ms
// after; PostgreSQL 37-52 µs of CPU an event either way (the session
// inserts and is_live flips are not HOT updates), this process 40-55 µs
// (the fake collector included). Above load ~7 both fall seconds behind.
//
//	go test -run '^$' -bench BenchmarkWriterLatency -benchtime 1x ./internal/consumer/
func BenchmarkWriterLatency(b *testing.B) {
	const (
		rate  = 10_000
		users = 10_000
		tick  = 5 * time.Millisecond
		span  = 5 * time.Second
	)
	st := benchStore(b)
	fake := kickapitest.NewServer(b)
	c := consumer.New(fake.Dial(b), st, slog.New(slog.DiscardHandler), nil, consumer.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}()

	w := newWorld(users)
	self0, pg0 := cpuTimes(b, st)
	var lat []time.Duration
	var backlog uint64
	b.ResetTimer()
	for range b.N {
		first := fake.LastSeq() + 1
		n := int(rate * span / time.Second)
		published := make([]time.Time, n)
		start := time.Now()
		sent := 0
		next := first // the first seq not yet acknowledged
		for sent < n || next < first+uint64(n) {
			now := time.Now()
			if want := min(n, int(float64(rate)*now.Sub(start).Seconds())); want > sent {
				fake.Publish(w.events(want - sent)...)
				for ; sent < want; sent++ {
					published[sent] = now
				}
			}
			acked := fake.Acked()
			backlog = max(backlog, first+uint64(sent)-1-min(acked, first+uint64(sent)-1))
			for ; next <= acked && next < first+uint64(n); next++ {
				lat = append(lat, now.Sub(published[next-first]))
			}
			if time.Since(start) > span+time.Minute {
				b.Fatalf("acknowledged %d of %d events a minute after the last", next-first, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	self1, pg1 := cpuTimes(b, st)
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(backlog), "max-backlog")
	b.ReportMetric(float64((self1-self0).Microseconds())/float64(len(lat)), "self-cpu-µs/event")
	b.ReportMetric(float64((pg1-pg0).Microseconds())/float64(len(lat)), "pg-cpu-µs/event")
	b.ReportMetric(0, "ns/op")
}

// world makes a steady stream of events over users streamers, each going
// live, updating and going offline: a third of the events start or end a
// session, the rest update viewers, as kicksim's changes do.
type world struct {
	users int
	next  int
	n     int
	live  map[int64]*kickmonv1.Session
}

func newWorld(users int) *world { return &world{users: users, live: map[int64]*kickmonv1.Session{}} }

func (w *world) events(n int) []*kickmonv1.Event {
	out := make([]*kickmonv1.Event, 0, n)
	for range n {
		w.n++
		uid := int64(w.next%w.users) + 1
		w.next += 7919 // a prime: successive events are about different streamers
		at := time.Duration(w.n) * time.Millisecond
		st := writertest.Streamer(uid, fmt.Sprintf("s%d", uid))
		kind := kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED
		sess := w.live[uid]
		switch {
		case sess == nil:
			kind = kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED
			sess = &kickmonv1.Session{SessionId: fmt.Sprintf("S%08d", w.n), StartedAt: writertest.At(at), DetectedBy: kickmonv1.Source_SOURCE_PUSHER}
			w.live[uid] = sess
		case w.n%5 == 0:
			kind = kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED
			sess.EndedAt = writertest.At(at)
			delete(w.live, uid)
		default:
			sess.PeakViewers += int64(w.n % 100)
		}
		if kind != kickmonv1.EventKind_EVENT_KIND_STREAM_ENDED {
			st.State, st.LiveSince, st.ViewerCount = kickmonv1.LiveState_LIVE_STATE_LIVE, sess.StartedAt, sess.PeakViewers
		}
		st.Title, st.CategoryName, st.Session = "ranked grind", "Just Chatting", sess
		out = append(out, writertest.Event(kind, st, kickmonv1.Source_SOURCE_PUSHER, at))
	}
	return out
}

// cpuTimes is the CPU time this process and the PostgreSQL backends of
// st's database have used so far (Linux /proc; zero where unreadable), for
// comparing changes by what they cost rather than by wall clock on a
// shared machine.
func cpuTimes(b *testing.B, st *store.Store) (self, pg time.Duration) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	rows, err := st.Pool().Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		pg += time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ 100
	}
	return self, pg
}
