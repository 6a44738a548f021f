package rpc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logtest"
	"github.com/kickmon/kickmon/collector/internal/spool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/proto/unixsock"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// waitTimeout bounds every wait for a condition.
const waitTimeout = 20 * time.Second

// peerEnv makes the test binary a client that calls every RPC on the socket
// it names and prints each outcome (see TestPeerPermissions).
const peerEnv = "KICKMON_RPC_TEST_PEER"

func TestMain(m *testing.M) {
	if path := os.Getenv(peerEnv); path != "" {
		os.Exit(runPeer(path))
	}
	goleak.VerifyTestMain(m)
}

// runPeer calls each RPC once and prints "name<TAB>numeric code<TAB>message".
func runPeer(path string) int {
	c, err := kickapi.Dial(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"ListStreamers", func() error { _, err := c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{}); return err }},
		{"GetStatus", func() error { _, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{}); return err }},
		{"AddStreamers", func() error {
			_, err := c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: []string{"nosuch"}})
			return err
		}},
		{"RemoveStreamers", func() error {
			_, err := c.RemoveStreamers(ctx, &kickmonv1.RemoveStreamersRequest{Slugs: []string{"nosuch"}})
			return err
		}},
		{"RefreshStreamers", func() error {
			_, err := c.RefreshStreamers(ctx, &kickmonv1.RefreshStreamersRequest{Slugs: []string{"nosuch"}})
			return err
		}},
		{"AckEvents", func() error { _, err := c.AckEvents(ctx, &kickmonv1.AckEventsRequest{Seq: 0}); return err }},
	}
	for _, cl := range calls {
		err := cl.call()
		st := status.Convert(err)
		fmt.Printf("%s\t%d\t%s\n", cl.name, st.Code(), st.Message())
	}
	return 0
}

// env is a running server over a real spool and a fake backend.
type env struct {
	srv  *Server
	sp   *spool.Spool
	be   *fakeBackend
	dir  string // the socket's directory
	path string // the socket
}

type config struct {
	spool      spool.Options
	pageSize   int
	pageBytes  int
	watchers   int
	adminGroup string
}

// start runs a server on a fresh socket and spool; t.Cleanup shuts it down.
func start(t *testing.T, opts ...func(*config)) *env {
	t.Helper()
	cfg := config{adminGroup: "kickmon-test-no-such-group"}
	for _, o := range opts {
		o(&cfg)
	}
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), cfg.spool)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kr")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sp: sp, be: newFakeBackend(sp), dir: dir, path: filepath.Join(dir, "k.sock")}
	e.srv, err = New(Options{Backend: e.be, Spool: sp, Logger: logtest.New(t), AdminGroup: cfg.adminGroup, PageSize: cfg.pageSize,
		PageBytes: cfg.pageBytes, MaxWatchers: cfg.watchers})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := unixsock.Listen(e.path, "kickcollector")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = sp.Close()
		_ = os.RemoveAll(dir)
	})
	return e
}

// dial connects a real client; t.Cleanup closes it.
func (e *env) dial(t *testing.T, opts ...grpc.DialOption) *kickapi.Conn {
	t.Helper()
	c, err := kickapi.Dial(e.path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// publish appends n STREAM_UPDATED events with titles of titleLen bytes
// and returns their seqs.
func (e *env) publish(t *testing.T, n, titleLen int) []uint64 {
	t.Helper()
	seqs, err := e.tryPublish(n, titleLen)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// tryPublish is publish for goroutines other than the test's.
func (e *env) tryPublish(n, titleLen int) ([]uint64, error) {
	evs := make([]*kickmonv1.Event, n)
	for i := range evs {
		evs[i] = &kickmonv1.Event{
			Kind:     kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED,
			Source:   kickmonv1.Source_SOURCE_POLL,
			Streamer: &kickmonv1.Streamer{BroadcasterUserId: 1, Slug: "alice", Title: strings.Repeat("t", titleLen)},
		}
	}
	if err := e.sp.Append(evs); err != nil {
		return nil, err
	}
	seqs := make([]uint64, n)
	for i, ev := range evs {
		seqs[i] = ev.GetSeq()
	}
	return seqs, nil
}

// fakeBackend is a small engine: a watch list whose changes go through the
// spool as events, like the real engine's.
type fakeBackend struct {
	sp *spool.Spool

	mu        sync.Mutex
	watched   map[string]*kickmonv1.Streamer // by slug
	known     map[string]*kickmonv1.Streamer // slugs Add can resolve
	refreshed []string
}

func newFakeBackend(sp *spool.Spool) *fakeBackend {
	return &fakeBackend{sp: sp, watched: map[string]*kickmonv1.Streamer{}, known: map[string]*kickmonv1.Streamer{}}
}

func (b *fakeBackend) resolvable(list ...*kickmonv1.Streamer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range list {
		b.known[st.GetSlug()] = st
	}
}

func (b *fakeBackend) List(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*kickmonv1.Streamer
	for _, st := range b.watched {
		out = append(out, proto.Clone(st).(*kickmonv1.Streamer))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetSlug() < out[j].GetSlug() })
	return &kickmonv1.ListStreamersResponse{Streamers: out, LastSeq: b.sp.LastSeq()}, nil
}

func (b *fakeBackend) Get(ctx context.Context, slug string, userID int64) (*kickmonv1.Streamer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.watched {
		if (slug != "" && st.GetSlug() == slug) || (slug == "" && st.GetBroadcasterUserId() == userID) {
			return proto.Clone(st).(*kickmonv1.Streamer), nil
		}
	}
	return nil, fmt.Errorf("streamer %q/%d: %w", slug, userID, ErrNotFound)
}

func (b *fakeBackend) Add(ctx context.Context, slugs []string, channelID int64) ([]*kickmonv1.StreamerResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*kickmonv1.StreamerResult
	for _, slug := range slugs {
		r := &kickmonv1.StreamerResult{Slug: slug}
		switch cur, known := b.watched[slug], b.known[slug]; {
		case cur != nil:
			r.Streamer, r.Unchanged = proto.Clone(cur).(*kickmonv1.Streamer), true
		case known == nil:
			r.Error = fmt.Sprintf("unknown slug %q", slug)
		default:
			st := proto.Clone(known).(*kickmonv1.Streamer)
			if channelID != 0 {
				st.ChannelId = channelID
			}
			if err := b.sp.Append([]*kickmonv1.Event{{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, Streamer: st, Source: kickmonv1.Source_SOURCE_OPERATOR}}); err != nil {
				return nil, err
			}
			b.watched[slug], r.Streamer = st, st
		}
		out = append(out, r)
	}
	return out, nil
}

func (b *fakeBackend) Remove(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error) {
	return b.eachWatched(slugs, func(slug string, st *kickmonv1.Streamer) error {
		st.Removed = true
		if err := b.sp.Append([]*kickmonv1.Event{{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, Streamer: st, Source: kickmonv1.Source_SOURCE_OPERATOR}}); err != nil {
			return err
		}
		delete(b.watched, slug)
		return nil
	})
}

func (b *fakeBackend) Refresh(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error) {
	return b.eachWatched(slugs, func(slug string, _ *kickmonv1.Streamer) error {
		b.refreshed = append(b.refreshed, slug)
		return nil
	})
}

// eachWatched calls fn, under the lock, with a copy of each watched
// streamer named in slugs (returned in its result); others fail per slug.
func (b *fakeBackend) eachWatched(slugs []string, fn func(slug string, st *kickmonv1.Streamer) error) ([]*kickmonv1.StreamerResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*kickmonv1.StreamerResult
	for _, slug := range slugs {
		r := &kickmonv1.StreamerResult{Slug: slug}
		if cur := b.watched[slug]; cur == nil {
			r.Error = fmt.Sprintf("%q is not watched", slug)
		} else {
			r.Streamer = proto.Clone(cur).(*kickmonv1.Streamer)
			if err := fn(slug, r.Streamer); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func (b *fakeBackend) Status(ctx context.Context) (*kickmonv1.CollectorStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &kickmonv1.CollectorStatus{Version: "test", Streamers: int64(len(b.watched))}, nil
}

func (b *fakeBackend) refreshedSlugs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.refreshed)
}
