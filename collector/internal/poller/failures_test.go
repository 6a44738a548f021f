package poller

import (
	"slices"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/internal/testwait"
	"github.com/kickmon/kickmon/collector/kicksim"
)

// maxInWindow is the most times within any half-open window of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	worst, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		worst = max(worst, i-j+1)
	}
	return worst
}

// observedAfter reports whether every user has a status observation made
// after t.
func observedAfter(users []int64, t time.Time) func([]observation.Observation, []batch) bool {
	return func(obs []observation.Observation, _ []batch) bool {
		seen := map[int64]bool{}
		for _, o := range obs {
			if o.Kind == observation.Status && o.ObservedAt.After(t) {
				seen[o.UserID] = true
			}
		}
		for _, u := range users {
			if !seen[u] {
				return false
			}
		}
		return true
	}
}

func TestBudgetHoldsDuringA429Storm(t *testing.T) {
	const budget, window, storm = 20, time.Second, 10
	h := newHarness(t, setup{
		sim:    []kicksim.Option{kicksim.WithStreamers(200)},
		client: func(c *kickrest.Config) { c.Budget, c.BudgetWindow = budget, window },
		// Short backoffs and no breaker: retries come as fast as the budget
		// lets them, which is what this test is about.
		opts: func(o *Options) {
			o.BackoffBase, o.BackoffMax, o.BreakerFailures = 5*time.Millisecond, 20*time.Millisecond, 1_000_000
		},
	})
	ss := h.watchAll()
	h.sim.FailNext(kicksim.EndpointChannels, storm, kicksim.Fault429)
	start := time.Now()
	h.run()
	h.waitStatus("rate-limited health", func(s Status) bool { return s.Health == HealthRateLimited })
	h.waitStatus("the storm's end", func(s Status) bool { return s.RateLimitedTotal == storm && s.Health == HealthOK })
	h.waitFor("every streamer observed after the storm", observedAfter(userIDsOf(ss), start))
	h.stop()
	times := h.stamps.times("/public/v1/channels")
	if len(times) <= storm {
		t.Fatalf("%d requests: the storm did not play out", len(times))
	}
	if worst := maxInWindow(times, window); worst > budget {
		t.Errorf("%d channels requests within %v during a 429 storm; budget %d", worst, window, budget)
	}
	st := h.p.Status()
	if st.LastErrorKind != "rate-limited" || st.ConsecutiveFailures != 0 || st.Budget.Limit != budget {
		t.Errorf("status after the storm %+v", st)
	}
}

func TestBlockedIsReportedAndRetriedWithBackoff(t *testing.T) {
	for _, f := range []kicksim.Fault{kicksim.Fault403HTML, kicksim.Fault403WAF} {
		t.Run(f.String(), func(t *testing.T) {
			h := newHarness(t, setup{
				sim:  []kicksim.Option{kicksim.WithStreamers(3)},
				opts: func(o *Options) { o.BackoffBase, o.BackoffMax = 200*time.Millisecond, time.Second },
			})
			ss := h.watchAll()
			h.sim.FailNext(kicksim.EndpointChannels, 3, f)
			start := time.Now()
			h.run()
			st := h.waitStatus("blocked health", func(s Status) bool { return s.Health == HealthBlocked && !s.BackoffUntil.IsZero() })
			if st.LastErrorKind != "blocked" || st.ConsecutiveFailures < 1 {
				t.Errorf("status while blocked %+v", st)
			}
			h.waitFor("recovery", observedAfter(userIDsOf(ss), start))
			h.stop()
			st = h.p.Status()
			if st.Health != HealthOK || st.Blind {
				t.Errorf("status after recovery %+v", st)
			}
			// Three refusals, then the same streamers again: retried, not dropped.
			if n := h.sim.Requests(kicksim.EndpointChannels); n < 4 {
				t.Errorf("%d channels requests, want 3 refused and at least one retry", n)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.batches) < 4 {
				t.Fatalf("%d batches", len(h.batches))
			}
			for _, b := range h.batches[:4] {
				if !slices.Equal(sortedCopy(b.ids), userIDsOf(ss)) {
					t.Errorf("batch %v: want every streamer, retried", b.ids)
				}
			}
		})
	}
}

func sortedCopy(ids []int64) []int64 {
	c := slices.Clone(ids)
	slices.Sort(c)
	return c
}

func TestBlindCoverageAndRecovery(t *testing.T) {
	h := newHarness(t, setup{
		sim: []kicksim.Option{kicksim.WithStreamers(5)},
		opts: func(o *Options) {
			o.Interval, o.BlindAfter = time.Second, 1500*time.Millisecond
			o.BreakerFailures = 3
		},
	})
	ss := h.watchAll()
	h.sim.FailNext(kicksim.EndpointChannels, 1_000_000, kicksim.Fault403HTML)
	h.run()
	h.waitFor("blind coverage", func(obs []observation.Observation, _ []batch) bool {
		return slices.ContainsFunc(obs, func(o observation.Observation) bool { return o.Kind == observation.Coverage && o.Blind })
	})
	st := h.waitStatus("open breaker", func(s Status) bool { return s.Breakers[EndpointChannels] == "open" })
	if !st.Blind || st.BlindReason != "blocked" || st.Health != HealthBlocked || st.Covered != 0 {
		t.Errorf("status while blind %+v", st)
	}
	healed := time.Now()
	h.sim.ClearFaults()
	h.waitFor("recovery", observedAfter(userIDsOf(ss), healed))
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	var cov []observation.Observation
	firstStatusAfter := -1
	for i, o := range h.obs {
		if o.Kind == observation.Coverage {
			cov = append(cov, o)
			continue
		}
		if firstStatusAfter < 0 {
			firstStatusAfter = i
		}
	}
	if len(cov) != 2 || !cov[0].Blind || cov[0].Reason != "blocked" || cov[1].Blind || cov[0].Source.String() != "SOURCE_POLL" || len(cov[0].UserIDs) != 0 {
		t.Fatalf("coverage observations %+v; want blind (blocked, all streamers) then sees again", cov)
	}
	if firstStatusAfter < 1 || h.obs[firstStatusAfter-1].Kind != observation.Coverage || h.obs[firstStatusAfter-1].Blind {
		t.Errorf("the first status observation does not follow the recovery")
	}
	if st := h.p.Status(); st.Blind || st.Covered != len(ss) || st.Breakers[EndpointChannels] != "closed" {
		t.Errorf("status after recovery %+v", st)
	}
}

func TestTokenRevokedWhilePolling(t *testing.T) {
	h := newHarness(t, setup{sim: []kicksim.Option{kicksim.WithStreamers(3)}})
	h.watchAll()
	h.run()
	// A token must exist before it can be revoked: wait for it, not for
	// round 1 (announced before its token is fetched).
	testwait.For(t, waitTimeout, "a token", func() bool { return h.p.Status().Token.Valid })
	h.sim.RevokeTokens()
	// The next request meets the revoked token: one renewal, then a
	// successful request after it (not round numbers: rounds may pass
	// while a loaded machine keeps the test from looking).
	testwait.For(t, waitTimeout, "a renewal and a success after it", func() bool {
		st := h.p.Status()
		return st.Token.Renewals >= 1 && st.LastSuccess.After(st.Token.IssuedAt)
	})
	h.stop()
	st := h.p.Status()
	if st.Token.Renewals != 1 || st.LastErrorKind != "" || st.Health != HealthOK {
		t.Errorf("status %+v: want one renewal and no failure", st)
	}
}

// TestBackoffByClass: with the defaults, 5xx and network failures wait at
// most the poll interval (at least 30 s), 403 blocks long, 429 briefly
// (the client lowers its rate instead), and the breaker stays open no
// longer than an interval (at most 30 s): the poller is back soon after
// Kick. (Before, every class grew to 2 minutes, plus 30 s breaker windows.)
func TestBackoffByClass(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(1))
	c, err := kickrest.New(kickrest.Config{ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), AuthURL: sim.AuthURL(), APIURL: sim.APIURL(), AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		interval          time.Duration
		kind              kickrest.Kind
		wantMax, wantBase time.Duration
		wantBreaker       time.Duration
	}{
		{2 * time.Second, kickrest.ServerError, 30 * time.Second, time.Second, 2 * time.Second},
		{2 * time.Second, kickrest.Network, 30 * time.Second, time.Second, 2 * time.Second},
		{time.Minute, kickrest.ServerError, time.Minute, time.Second, 30 * time.Second},
		{time.Minute, kickrest.RateLimited, 30 * time.Second, time.Second, 30 * time.Second},
		{2 * time.Second, kickrest.Blocked, 30 * time.Minute, 30 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.interval.String()+"/"+tt.kind.String(), func(t *testing.T) {
			p, err := New(c, Options{Interval: tt.interval, Out: make(chan observation.Observation)})
			if err != nil {
				t.Fatal(err)
			}
			pol := p.policy(classOf(tt.kind))
			if pol.Max != tt.wantMax || pol.Base != tt.wantBase {
				t.Errorf("policy %+v, want base %v max %v", pol, tt.wantBase, tt.wantMax)
			}
			if d := pol.Wait(100); d > tt.wantMax {
				t.Errorf("wait after 100 failures %v, over the cap %v", d, tt.wantMax)
			}
			if p.o.BreakerTimeout != tt.wantBreaker {
				t.Errorf("breaker timeout %v, want %v", p.o.BreakerTimeout, tt.wantBreaker)
			}
		})
	}
}
