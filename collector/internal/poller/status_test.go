package poller

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/kicksim"
)

// BenchmarkStatus is one Status call with n streamers watched, a third of
// them covered by a response (the status API, /metrics and kickbench ask
// twice a second):
//
//	go test -run '^$' -bench BenchmarkStatus -benchmem ./collector/internal/poller/
func BenchmarkStatus(b *testing.B) {
	c := simClient(b, kicksim.Start(b, kicksim.WithStreamers(1)))
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("streamers=%d", n), func(b *testing.B) {
			p, err := New(c, Options{Out: make(chan observation.Observation), Budget: 100_000})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for id := range int64(n) {
				p.Watch(id+1, 0)
				if id%3 == 0 {
					p.covered[now.Add(-time.Duration(id)*time.Millisecond).UnixNano()/int64(p.coverBucket())]++
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if st := p.Status(); st.Streamers != n {
					b.Fatalf("%d streamers", st.Streamers)
				}
			}
		})
	}
}

// Status counts the covered streamers from buckets of time: the count is
// that of a walk over every entry, to within a bucket, as streamers are
// refreshed, refreshed again and unwatched.
func TestCoveredCountedByBuckets(t *testing.T) {
	p := &Poller{o: Options{BlindAfter: 64 * time.Second}, covered: map[int64]int{}, watched: map[int64]*entry{}}
	base := time.Unix(1_000_000, 0) // a bucket boundary (buckets of 1 s)
	for _, tc := range []struct {
		name string
		op   func()
		now  time.Time
		want int
	}{
		{"nothing watched", func() {}, base, 0},
		{"three refreshed", func() {
			for id := range int64(3) {
				p.watched[id] = &entry{}
				p.setCovered(p.watched[id], base)
			}
		}, base.Add(10 * time.Second), 3},
		{"never refreshed", func() { p.watched[9] = &entry{} }, base.Add(10 * time.Second), 3},
		{"refreshed again", func() { p.setCovered(p.watched[0], base.Add(30*time.Second)) }, base.Add(64 * time.Second), 3},
		{"older than BlindAfter", func() {}, base.Add(65 * time.Second), 1},
		{"within the bucket", func() {}, base.Add(64*time.Second + 500*time.Millisecond), 3},
		{"unwatched", func() { p.Unwatch(0) }, base.Add(64 * time.Second), 2},
		{"an unwatched id", func() { p.Unwatch(42) }, base.Add(64 * time.Second), 2},
	} {
		tc.op()
		if got := p.coveredSince(tc.now.Add(-p.o.BlindAfter)); got != tc.want {
			t.Errorf("%s: %d covered, want %d", tc.name, got, tc.want)
		}
	}
	if len(p.covered) != 1 {
		t.Errorf("buckets %v: the emptied ones should be gone", p.covered)
	}
}

// simClient is a kickrest client of sim with the production budget.
func simClient(tb testing.TB, sim *kicksim.Sim) *kickrest.Client {
	tb.Helper()
	c, err := kickrest.New(kickrest.Config{
		ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), AuthURL: sim.AuthURL(), APIURL: sim.APIURL(),
		AllowInsecure: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Each streamer without a channel id is asked for again within its period
// (plus the pacing of one batch), in simulated time: nextBatch takes the
// time as an argument. Before, pacing by the length of the candidate list
// held its last due streamers back by up to half a period.
func TestUncoveredAskedWithinThePeriod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		spread bool // last asked spread over a period, else all new (a bulk add)
	}{
		{"steady, 500 streamers", 500, true},
		{"steady, 5000 streamers", 5000, true},
		{"bulk add of 5000", 5000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make(chan observation.Observation)
			p, err := New(simClient(t, kicksim.Start(t, kicksim.WithStreamers(1))), Options{Interval: time.Minute, Budget: 100_000, Out: out})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Unix(1_000_000, 0)
			every := p.o.UncoveredEvery
			for i := range tc.n {
				p.Watch(int64(i+1), 0)
				if tc.spread {
					p.watched[int64(i+1)].askedAt = start.Add(-time.Duration(i) * every / time.Duration(tc.n))
				}
			}
			worst, asked, extra := time.Duration(0), 0, 0
			const step = 10 * time.Millisecond
			for now := start; now.Before(start.Add(3 * every)); now = now.Add(step) {
				for {
					_, why, ids, _ := p.nextBatch(now)
					if len(ids) == 0 {
						break
					}
					if why == byUncovered {
						extra++
					}
					for _, id := range ids {
						e := p.watched[id]
						if !e.lastOK.IsZero() {
							worst = max(worst, now.Sub(e.lastOK))
						}
						p.setCovered(e, now) // answered at once
						asked++
					}
				}
			}
			if limit := every + every/10; worst > limit {
				t.Errorf("a streamer waited %s between requests, want at most %s (period %s)", worst, limit, every)
			}
			if asked < 2*tc.n {
				t.Errorf("%d streamers asked for in three periods, want at least %d", asked, 2*tc.n)
			}
			// Full batches: three periods are three requests per 50
			// streamers at most (the rounds' refreshes save some).
			if batches := (tc.n + batchSize - 1) / batchSize; extra > 3*batches+3 {
				t.Errorf("%d extra requests in three periods, want at most %d: batches not full", extra, 3*batches+3)
			}
		})
	}
}
