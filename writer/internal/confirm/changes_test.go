package confirm_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/proto/kickapitest"
	"github.com/kickmon/kickmon/writer/internal/confirm"
	"github.com/kickmon/kickmon/writer/internal/metrics"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// changesCollector is the fake collector with ListStreamers' options:
// confirmations_only trims the states, and changed_since gives only the
// streamers that differ from the list that token named. It records every
// request and response.
type changesCollector struct {
	*kickapitest.Server

	mu    sync.Mutex
	lists []map[int64]*kickmonv1.Streamer // token n: the list it named
	reqs  []*kickmonv1.ListStreamersRequest
	ress  []*kickmonv1.ListStreamersResponse
}

// ListStreamers implements the API.
func (c *changesCollector) ListStreamers(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error) {
	res, err := c.Server.ListStreamers(ctx, req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	all := map[int64]*kickmonv1.Streamer{}
	for _, st := range res.Streamers {
		all[st.GetBroadcasterUserId()] = st
	}
	var before map[int64]*kickmonv1.Streamer
	if n, err := strconv.Atoi(req.GetChangedSince()); err == nil && n < len(c.lists) {
		before = c.lists[n]
	}
	out := res.Streamers[:0]
	for _, st := range res.Streamers {
		if before != nil && proto.Equal(before[st.GetBroadcasterUserId()], st) {
			continue
		}
		if req.GetConfirmationsOnly() {
			trimmed := &kickmonv1.Streamer{BroadcasterUserId: st.GetBroadcasterUserId(), LastConfirmedAt: st.GetLastConfirmedAt()}
			for _, cv := range st.GetCoverage() {
				trimmed.Coverage = append(trimmed.Coverage, &kickmonv1.Coverage{Source: cv.GetSource(), LastConfirmedAt: cv.GetLastConfirmedAt()})
			}
			st = trimmed
		}
		out = append(out, st)
	}
	res.Streamers, res.ChangesOnly, res.ChangesToken = out, before != nil, strconv.Itoa(len(c.lists))
	c.lists = append(c.lists, all)
	c.reqs = append(c.reqs, req)
	c.ress = append(c.ress, res)
	return res, nil
}

// serveChanges serves a changesCollector in front of fake on its own
// socket and dials it.
func serveChanges(t *testing.T, fake *kickapitest.Server) (*changesCollector, *kickapi.Conn) {
	t.Helper()
	dir, err := os.MkdirTemp("", "chg")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := &changesCollector{Server: fake}
	srv := grpc.NewServer()
	kickmonv1.RegisterCollectorServiceServer(srv, c)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	conn, err := kickapi.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-done
		_ = os.RemoveAll(dir)
	})
	return c, conn
}

// calls returns the requests and responses so far.
func (c *changesCollector) calls() ([]*kickmonv1.ListStreamersRequest, []*kickmonv1.ListStreamersResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs), slices.Clone(c.ress)
}

// The refresher asks for confirmation times only, and (after its first,
// whole list) only for what changed since its last list written: a
// changed streamer is all a refresh reads and writes.
func TestRefreshReadsChangesOnly(t *testing.T) {
	fake := kickapitest.NewServer(t)
	c, conn := serveChanges(t, fake)
	e := startOn(t, fake, conn, confirm.Options{Chunk: 2, FullEvery: 1000})
	watched := e.addFive(t)
	fake.SetStreamers(watched...)
	e.await(t, metrics.ConfirmOK)
	want := all(5 * time.Minute)
	if d := cmp.Diff(want, e.rows(t)); d != "" {
		t.Fatalf("5 streamers (-want +got):\n%s", d)
	}

	// Settled: the database has every event, so from now on each list is
	// written and the next asks for the changes since it.
	settled, _ := c.calls()
	watched[2] = streamer(103, "s2", 7*time.Minute)
	fake.SetStreamers(watched...)
	e.await(t, metrics.ConfirmOK)
	want[2].Confirmed = writertest.T0.Add(7 * time.Minute)
	if d := cmp.Diff(want, e.rows(t)); d != "" {
		t.Errorf("one changed (-want +got):\n%s", d)
	}

	reqs, ress := c.calls()
	carried := 0
	for i := len(settled); i < len(reqs); i++ {
		req, res := reqs[i], ress[i]
		if !req.GetConfirmationsOnly() {
			t.Errorf("list %d: not confirmations_only", i)
		}
		if prev := ress[i-1].GetChangesToken(); req.GetChangedSince() != prev || !res.GetChangesOnly() {
			t.Errorf("list %d: changed_since %q (changes only: %v), want the previous list's token %q", i, req.GetChangedSince(), res.GetChangesOnly(), prev)
		}
		var ids []int64
		for _, st := range res.GetStreamers() {
			ids = append(ids, st.GetBroadcasterUserId())
		}
		switch {
		case len(ids) == 0:
		case slices.Equal(ids, []int64{103}):
			carried++
		default:
			t.Errorf("list %d of changes: users %v, want [103] or none", i, ids)
		}
	}
	if carried != 1 {
		t.Errorf("%d lists carried the changed streamer, want 1", carried)
	}
}

// Every FullEvery-th list is whole (no changed_since).
func TestRefreshListsWholeEveryFullEvery(t *testing.T) {
	fake := kickapitest.NewServer(t)
	c, conn := serveChanges(t, fake)
	e := startOn(t, fake, conn, confirm.Options{FullEvery: 3})
	e.publish(t, kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, streamer(101, "alpha", time.Minute))
	fake.SetStreamers(streamer(101, "alpha", 2*time.Minute))
	e.await(t, metrics.ConfirmOK)
	settled, _ := c.calls() // from now on every list is written
	for range 4 {
		e.await(t, metrics.ConfirmOK)
	}
	reqs, _ := c.calls()
	var whole []int
	for i := len(settled); i < len(reqs); i++ {
		if reqs[i].GetChangedSince() == "" {
			whole = append(whole, i)
		}
	}
	for i := 1; i < len(whole); i++ {
		if whole[i]-whole[i-1] != 3 {
			t.Errorf("whole lists at %v, want every third", whole)
			break
		}
	}
	if len(whole) < 2 {
		t.Errorf("whole lists at %v of %d, want every third", whole, len(reqs))
	}
}
