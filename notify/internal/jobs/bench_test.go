package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kickmon/kickmon/notify/internal/config"
	"github.com/kickmon/kickmon/notify/internal/jobs"
	"github.com/kickmon/kickmon/notify/internal/message"
	"github.com/kickmon/kickmon/notify/internal/targets"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/pgtest"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// BenchmarkGoLiveToMessage measures, on an idle notifier, the time from
// the commit of the writer's transaction holding a STREAM_STARTED to the
// message arriving at a local Discord-like target, by how the writer hands
// the event over: "outbox", as kickwriter does (a kickmon.notify_outbox
// row; its NOTIFY wakes the pump, which moves it into River's queue), or
// "river", as older writers did (a River job inserted by the writer).
// Then River's fetch of the job, the fan-out (reading the event from
// status_events), the fetch of the delivery, the HTTP post. It reports p50
// and p99 over lone events spaced 50 ms apart. Add the writer's batch
// interval (KICKMON_BATCH_INTERVAL, 100 ms) for the whole of "kickmon saw
// it go live" → message.
//
//	go test -run '^$' -bench BenchmarkGoLiveToMessage -benchtime 200x ./internal/jobs/
//
// On the shared 2-core machine (load 3-7), two runs: outbox 48.9 / 190.6
// ms and 49.5 / 199.0 ms (p50 / p99), river 49.0 / 192.3 ms and 49.3 /
// 182.2 ms: the pump's hop costs nothing measurable (LISTEN wakes it).
func BenchmarkGoLiveToMessage(b *testing.B) {
	for _, path := range []string{"outbox", "river"} {
		b.Run("path="+path, func(b *testing.B) { benchGoLive(b, path) })
	}
}

func benchGoLive(b *testing.B, path string) {
	db := pgtest.New(b, riverTemplate)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived[r.Header.Get(targets.HeaderDelivery)] = time.Now()
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		select {
		case got <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	tg := &config.Target{Name: "d", Type: config.Discord, URL: srv.URL, Events: []string{"live"}, Templates: message.DefaultTemplates()}
	n, err := jobs.New(pool, jobs.Options{Targets: []*config.Target{tg}, Sender: &targets.Sender{Client: http.DefaultClient}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	if err := n.Start(runCtx); err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); n.Stop(5 * time.Second) }()
	oldWriter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: jobs.Schema})
	if err != nil {
		b.Fatal(err)
	}
	committed := map[string]time.Time{}
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(i + 1)
		key := targets.Key("d", seq)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			storeEvent(b, ctx, tx, event(seq, kickmonv1.EventKind_EVENT_KIND_STREAM_STARTED, fmt.Sprint("s", i%50), "", 0))
			if path == "outbox" {
				record(b, ctx, tx, seq, "live")
				return nil
			}
			_, err := oldWriter.InsertTx(ctx, tx, jobs.EventArgs{Seq: seq, Changes: []string{"live"}}, nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		committed[key] = time.Now()
		deadline := time.After(time.Minute)
		for {
			mu.Lock()
			_, ok := arrived[key]
			mu.Unlock()
			if ok {
				break
			}
			select {
			case <-got:
			case <-deadline:
				b.Fatalf("%s never arrived", key)
			case <-time.After(10 * time.Millisecond):
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	var lat []time.Duration
	for k, c := range committed {
		lat = append(lat, arrived[k].Sub(c))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
