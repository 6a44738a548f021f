package poller

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/observation"
	"github.com/kickmon/kickmon/collector/kicksim"
)

func newResolver(t *testing.T, sim *kicksim.Sim) *Resolver {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := kickrest.New(kickrest.Config{
		ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), AuthURL: sim.AuthURL(), APIURL: sim.APIURL(),
		AllowInsecure: true, Budget: -1, Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return NewResolver(c, logtest.New(t))
}

func TestNormalizeSlug(t *testing.T) {
	tests := []struct {
		in, want string
		errPart  string
	}{
		{"xqc", "xqc", ""},
		{"  XQC\t", "xqc", ""},
		{"spicy-wizard_83551", "spicy-wizard_83551", ""},
		{"abcdefghijklmnopqrstuvwxy", "abcdefghijklmnopqrstuvwxy", ""},
		{"abcdefghijklmnopqrstuvwxyz", "", "longer than 25"},
		{"", "", "empty"},
		{"   ", "", "empty"},
		{"bad slug", "", `' ' is not allowed`},
		{"é", "", "not allowed"},
		{"a/../b", "", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeSlug(tt.in)
			if tt.errPart == "" {
				if err != nil || got != tt.want {
					t.Errorf("NormalizeSlug(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSlug) || !strings.Contains(err.Error(), tt.errPart) || !strings.Contains(err.Error(), "slug "+quote(tt.in)) {
				t.Errorf("NormalizeSlug(%q) error %v; want ErrInvalidSlug naming the slug and %q", tt.in, err, tt.errPart)
			}
		})
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, "\t", `\t`) + `"` }

func TestResolveInBatchesOf50WithState(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(120), kicksim.WithLiveFraction(0.4))
	r := newResolver(t, sim)
	ss := sim.Streamers()
	slugs := make([]string, len(ss))
	for i, s := range ss {
		slugs[i] = s.Slug
		if i%3 == 0 {
			slugs[i] = "  " + strings.ToUpper(s.Slug) + " "
		}
	}
	res := r.Resolve(t.Context(), slugs)
	if n := sim.Requests(kicksim.EndpointChannels); n != 3 {
		t.Errorf("%d channels requests for 120 slugs, want 3", n)
	}
	for i, s := range ss {
		got := res[i]
		if got.Err != nil || got.Slug != slugs[i] || got.UserID != s.UserID || got.Current == nil {
			t.Fatalf("slug %q: %+v, want user %d", slugs[i], got, s.UserID)
		}
		want := observation.Offline
		if s.Live {
			want = observation.Live
		}
		if c := got.Current; c.Live != want || c.UserID != s.UserID || c.Slug != s.Slug || (s.Live && !c.StartedAt.Equal(s.StartedAt)) {
			t.Errorf("slug %q: current %+v, want %v", slugs[i], c, want)
		}
	}
}

func TestResolveReportsEachBadSlugAndBisects(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(60))
	r := newResolver(t, sim)
	ss := sim.Streamers()
	var slugs []string
	for _, s := range ss[:47] {
		slugs = append(slugs, s.Slug)
	}
	slugs = append(slugs, "no-such-streamer", "Not A Slug!", "also-unknown", ss[0].Slug, strings.Repeat("x", 26))
	res := r.Resolve(t.Context(), slugs)
	if len(res) != len(slugs) {
		t.Fatalf("%d results for %d slugs", len(res), len(slugs))
	}
	for i, s := range ss[:47] {
		if res[i].Err != nil || res[i].UserID != s.UserID {
			t.Errorf("good slug %q: %+v", s.Slug, res[i])
		}
	}
	if res[50].Err != nil || res[50].UserID != ss[0].UserID {
		t.Errorf("repeated slug: %+v", res[50])
	}
	for _, c := range []struct {
		i    int
		want error
	}{{47, ErrUnknownSlug}, {48, ErrInvalidSlug}, {49, ErrUnknownSlug}, {51, ErrInvalidSlug}} {
		got := res[c.i]
		if !errors.Is(got.Err, c.want) || got.UserID != 0 || !strings.Contains(got.Err.Error(), slugs[c.i]) {
			t.Errorf("slug %q: %v; want %v naming the slug", slugs[c.i], got.Err, c.want)
		}
	}
	// 49 distinct valid slugs, 2 unknown: bisection costs more than one
	// request, but far less than one per slug.
	if n := sim.Requests(kicksim.EndpointChannels); n < 3 || n > 20 {
		t.Errorf("%d channels requests", n)
	}
}

func TestResolveWhenKickFails(t *testing.T) {
	sim := kicksim.Start(t, kicksim.WithStreamers(2))
	r := newResolver(t, sim)
	sim.FailNext(kicksim.EndpointChannels, 1, kicksim.Fault503)
	ss := sim.Streamers()
	res := r.Resolve(t.Context(), []string{ss[0].Slug, ss[1].Slug})
	for _, got := range res {
		if !errors.Is(got.Err, kickrest.ErrServerError) || errors.Is(got.Err, ErrUnknownSlug) || !strings.Contains(got.Err.Error(), got.Slug) {
			t.Errorf("%q: %v; want a server error naming the slug", got.Slug, got.Err)
		}
	}
}
