// Package kickapitest is an in-process fake of kickcollector's gRPC API on a
// real Unix socket, for testing the writer, viewer and ctl without Kick or a
// collector: tests set streamers, publish events and observe acks.
package kickapitest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// pageSize bounds the events of one WatchEvents message.
const pageSize = 256

// Server is a fake kickcollector. All methods are safe for concurrent use.
type Server struct {
	kickmonv1.UnimplementedCollectorServiceServer

	path string

	mu        sync.Mutex
	srv       *grpc.Server
	streamers map[int64]*kickmonv1.Streamer
	known     map[string]*kickmonv1.Streamer // slugs AddStreamers can resolve
	events    []*kickmonv1.Event             // retained; events[i].Seq == firstSeq+i
	firstSeq  uint64                         // oldest retained seq (lastSeq+1 when none)
	lastSeq   uint64
	acked     uint64
	ackedAt   time.Time
	notify    chan struct{} // closed and replaced when anything changes
	status    *kickmonv1.CollectorStatus
	refreshed []string
	deny      bool
	watchers  int32
	logID     string
}

// NewServer starts a fake on a short temporary Unix socket; t.Cleanup stops it.
func NewServer(t testing.TB) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "kat")
	if err != nil {
		t.Fatalf("kickapitest: temp dir: %v", err)
	}
	s := &Server{
		path:      filepath.Join(dir, "k.sock"),
		streamers: map[int64]*kickmonv1.Streamer{},
		known:     map[string]*kickmonv1.Streamer{},
		firstSeq:  1,
		logID:     "kickapitest-log-1",
		notify:    make(chan struct{}),
		status:    &kickmonv1.CollectorStatus{Version: "kickapitest"},
	}
	if err := s.Start(); err != nil {
		t.Fatalf("kickapitest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		_ = os.RemoveAll(dir)
	})
	return s
}

// Path is the socket path clients dial.
func (s *Server) Path() string { return s.path }

// Dial connects a real gRPC client to the fake; t.Cleanup closes it.
func (s *Server) Dial(t testing.TB) *kickapi.Conn {
	t.Helper()
	c, err := kickapi.Dial(s.path)
	if err != nil {
		t.Fatalf("kickapitest: dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Start (re)starts serving on the socket, keeping all state. NewServer calls it.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	_ = os.Remove(s.path)
	lis, err := net.Listen("unix", s.path)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.path, err)
	}
	srv := grpc.NewServer()
	kickmonv1.RegisterCollectorServiceServer(srv, s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	s.srv = srv
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// Stop drops every connection at once, as a crashed collector would. Start
// serves again with the same state.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// SetStreamers replaces the watch list without publishing events.
func (s *Server) SetStreamers(list ...*kickmonv1.Streamer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streamers = map[int64]*kickmonv1.Streamer{}
	for _, st := range list {
		s.streamers[st.GetBroadcasterUserId()] = proto.Clone(st).(*kickmonv1.Streamer)
	}
	s.wakeLocked()
}

// SetResolvable makes AddStreamers resolve these streamers by slug; other
// slugs fail with "unknown slug".
func (s *Server) SetResolvable(list ...*kickmonv1.Streamer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range list {
		s.known[st.GetSlug()] = proto.Clone(st).(*kickmonv1.Streamer)
	}
}

// Publish assigns the next seqs to events (clones), updates the streamers
// they carry, and wakes watchers. It returns the assigned seqs.
func (s *Server) Publish(events ...*kickmonv1.Event) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs := make([]uint64, 0, len(events))
	for _, e := range events {
		s.publishLocked(e)
		seqs = append(seqs, s.lastSeq)
	}
	s.wakeLocked()
	return seqs
}

func (s *Server) publishLocked(e *kickmonv1.Event) {
	e = proto.Clone(e).(*kickmonv1.Event)
	s.lastSeq++
	e.Seq = s.lastSeq
	if e.ObservedAt == nil {
		e.ObservedAt = timestamppb.Now()
	}
	if st := e.GetStreamer(); st != nil {
		if st.GetRemoved() {
			delete(s.streamers, st.GetBroadcasterUserId())
		} else {
			s.streamers[st.GetBroadcasterUserId()] = proto.Clone(st).(*kickmonv1.Streamer)
		}
	}
	s.events = append(s.events, e)
}

// LogID is the fake's event log id (see SpoolStatus.log_id).
func (s *Server) LogID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logID
}

// ReplaceLog starts a new, empty event log with id (as a collector whose
// spool was moved aside): seqs start at 1 again, the watch list stays, and
// the open WatchEvents streams end with UNAVAILABLE as at a restart.
func (s *Server) ReplaceLog(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logID = id
	s.events, s.firstSeq, s.lastSeq, s.acked, s.ackedAt = nil, 1, 0, 0, time.Time{}
	s.wakeLocked()
}

// DropBefore forgets events with seq < seq, as a full spool would;
// WatchEvents from an older seq then answers OUT_OF_RANGE.
func (s *Server) DropBefore(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.firstSeq < seq && len(s.events) > 0 {
		s.events = s.events[1:]
		s.firstSeq++
	}
	if len(s.events) == 0 && seq > s.firstSeq {
		s.firstSeq = min(seq, s.lastSeq+1)
	}
}

// SetStatus sets what GetStatus returns; the spool's seqs, watchers and
// counts are filled in from the fake's own state.
func (s *Server) SetStatus(st *kickmonv1.CollectorStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = proto.Clone(st).(*kickmonv1.CollectorStatus)
}

// DenyMutations makes mutating calls answer PERMISSION_DENIED, as the real
// collector does for peers outside the admin group.
func (s *Server) DenyMutations(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// Acked is the highest seq acknowledged so far.
func (s *Server) Acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// LastSeq is the seq of the last published event.
func (s *Server) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq
}

// WaitAcked blocks until the acked seq reaches seq or ctx ends.
func (s *Server) WaitAcked(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		acked, ch := s.acked, s.notify
		s.mu.Unlock()
		if acked >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for ack of seq %d (acked %d): %w", seq, acked, ctx.Err())
		case <-ch:
		}
	}
}

// Refreshed lists the slugs RefreshStreamers was asked about, in order.
func (s *Server) Refreshed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refreshed)
}

func (s *Server) wakeLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

func (s *Server) checkMutation() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deny {
		return status.Error(codes.PermissionDenied, "peer is not root, the collector's user or in the admin group")
	}
	return nil
}

// sortedLocked returns the streamers ordered by slug.
func (s *Server) sortedLocked() []*kickmonv1.Streamer {
	out := make([]*kickmonv1.Streamer, 0, len(s.streamers))
	for _, st := range s.streamers {
		out = append(out, proto.Clone(st).(*kickmonv1.Streamer))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetSlug() < out[j].GetSlug() })
	return out
}

func (s *Server) bySlugLocked(slug string) *kickmonv1.Streamer {
	for _, st := range s.streamers {
		if st.GetSlug() == slug {
			return st
		}
	}
	return nil
}

// ListStreamers implements the API.
func (s *Server) ListStreamers(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &kickmonv1.ListStreamersResponse{Streamers: s.sortedLocked(), LastSeq: s.lastSeq}, nil
}

// GetStreamer implements the API.
func (s *Server) GetStreamer(ctx context.Context, req *kickmonv1.GetStreamerRequest) (*kickmonv1.GetStreamerResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st *kickmonv1.Streamer
	switch k := req.GetKey().(type) {
	case *kickmonv1.GetStreamerRequest_Slug:
		st = s.bySlugLocked(k.Slug)
	case *kickmonv1.GetStreamerRequest_BroadcasterUserId:
		st = s.streamers[k.BroadcasterUserId]
	default:
		return nil, status.Error(codes.InvalidArgument, "slug or broadcaster_user_id is required")
	}
	if st == nil {
		return nil, status.Error(codes.NotFound, "streamer is not watched")
	}
	return &kickmonv1.GetStreamerResponse{Streamer: proto.Clone(st).(*kickmonv1.Streamer)}, nil
}

// AddStreamers implements the API: resolvable slugs are added with a
// STREAMER_ADDED event, others fail per slug.
func (s *Server) AddStreamers(ctx context.Context, req *kickmonv1.AddStreamersRequest) (*kickmonv1.AddStreamersResponse, error) {
	if err := s.checkMutation(); err != nil {
		return nil, err
	}
	if req.GetChannelId() != 0 && len(req.GetSlugs()) != 1 {
		return nil, status.Error(codes.InvalidArgument, "channel_id needs exactly one slug")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &kickmonv1.AddStreamersResponse{}
	for _, slug := range req.GetSlugs() {
		r := &kickmonv1.StreamerResult{Slug: slug}
		switch cur, known := s.bySlugLocked(slug), s.known[slug]; {
		case cur != nil:
			r.Streamer, r.Unchanged = proto.Clone(cur).(*kickmonv1.Streamer), true
		case known == nil:
			r.Error = fmt.Sprintf("unknown slug %q: no such Kick channel", slug)
		default:
			st := proto.Clone(known).(*kickmonv1.Streamer)
			if req.GetChannelId() != 0 {
				st.ChannelId = req.GetChannelId()
			}
			st.AddedAt = timestamppb.Now()
			s.publishLocked(&kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_ADDED, Streamer: st, Source: kickmonv1.Source_SOURCE_OPERATOR})
			r.Streamer = st
		}
		resp.Results = append(resp.Results, r)
	}
	s.wakeLocked()
	return resp, nil
}

// RemoveStreamers implements the API with a STREAMER_REMOVED event per slug.
func (s *Server) RemoveStreamers(ctx context.Context, req *kickmonv1.RemoveStreamersRequest) (*kickmonv1.RemoveStreamersResponse, error) {
	if err := s.checkMutation(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &kickmonv1.RemoveStreamersResponse{}
	for _, slug := range req.GetSlugs() {
		r := &kickmonv1.StreamerResult{Slug: slug}
		if cur := s.bySlugLocked(slug); cur == nil {
			r.Error = fmt.Sprintf("%q is not watched", slug)
		} else {
			st := proto.Clone(cur).(*kickmonv1.Streamer)
			st.Removed = true
			s.publishLocked(&kickmonv1.Event{Kind: kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED, Streamer: st, Source: kickmonv1.Source_SOURCE_OPERATOR})
			r.Streamer = st
		}
		resp.Results = append(resp.Results, r)
	}
	s.wakeLocked()
	return resp, nil
}

// RefreshStreamers implements the API by recording the request.
func (s *Server) RefreshStreamers(ctx context.Context, req *kickmonv1.RefreshStreamersRequest) (*kickmonv1.RefreshStreamersResponse, error) {
	if err := s.checkMutation(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &kickmonv1.RefreshStreamersResponse{}
	slugs := req.GetSlugs()
	if len(slugs) == 0 {
		for _, st := range s.sortedLocked() {
			slugs = append(slugs, st.GetSlug())
		}
	}
	for _, slug := range slugs {
		r := &kickmonv1.StreamerResult{Slug: slug}
		if cur := s.bySlugLocked(slug); cur == nil {
			r.Error = fmt.Sprintf("%q is not watched", slug)
		} else {
			r.Streamer = proto.Clone(cur).(*kickmonv1.Streamer)
			s.refreshed = append(s.refreshed, slug)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// WatchEvents implements the API: replay retained events, then follow.
func (s *Server) WatchEvents(req *kickmonv1.WatchEventsRequest, stream grpc.ServerStreamingServer[kickmonv1.WatchEventsResponse]) error {
	s.mu.Lock()
	logID := s.logID
	if want := req.GetLogId(); want != "" && want != logID {
		s.mu.Unlock()
		return kickapi.LogChangedError(want, logID)
	}
	next := req.GetFromSeq()
	if next == 0 {
		next = s.firstSeq
	}
	if next < s.firstSeq {
		first := s.firstSeq
		s.mu.Unlock()
		return status.Errorf(codes.OutOfRange, "from_seq %d was dropped; oldest retained is %d", next, first)
	}
	if next > s.lastSeq+1 {
		last := s.lastSeq
		s.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "from_seq %d is beyond the last seq %d", next, last)
	}
	s.watchers++
	s.mu.Unlock()
	if err := stream.SendHeader(metadata.Pairs(kickapi.HeaderLogID, logID)); err != nil {
		return err
	}
	defer func() {
		s.mu.Lock()
		s.watchers--
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		var batch []*kickmonv1.Event
		if s.logID != logID {
			s.mu.Unlock()
			return status.Error(codes.Unavailable, "kickcollector restarted")
		}
		if next < s.firstSeq {
			s.mu.Unlock()
			return status.Errorf(codes.ResourceExhausted, "watcher fell behind: seq %d was dropped", next)
		}
		if next <= s.lastSeq {
			// Pages, like the real collector, so a long backlog never
			// makes one message larger than a client accepts.
			rest := s.events[next-s.firstSeq:]
			batch = slices.Clone(rest[:min(len(rest), pageSize)])
		}
		ch := s.notify
		s.mu.Unlock()
		if len(batch) > 0 {
			if err := stream.Send(&kickmonv1.WatchEventsResponse{Events: batch, LogId: logID}); err != nil {
				return err
			}
			next = batch[len(batch)-1].GetSeq() + 1
			continue
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-ch:
		}
	}
}

// AckEvents implements the API; acks never move backwards.
func (s *Server) AckEvents(ctx context.Context, req *kickmonv1.AckEventsRequest) (*kickmonv1.AckEventsResponse, error) {
	if err := s.checkMutation(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if want := req.GetLogId(); want != "" && want != s.logID {
		return nil, kickapi.LogChangedError(want, s.logID)
	}
	if req.GetSeq() > s.lastSeq {
		return nil, status.Errorf(codes.InvalidArgument, "ack of seq %d beyond last seq %d", req.GetSeq(), s.lastSeq)
	}
	if req.GetSeq() > s.acked {
		s.acked, s.ackedAt = req.GetSeq(), time.Now()
		s.wakeLocked()
	}
	return &kickmonv1.AckEventsResponse{AckedSeq: s.acked}, nil
}

// GetStatus implements the API.
func (s *Server) GetStatus(ctx context.Context, req *kickmonv1.GetStatusRequest) (*kickmonv1.GetStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := proto.Clone(s.status).(*kickmonv1.CollectorStatus)
	if st.Spool == nil {
		st.Spool = &kickmonv1.SpoolStatus{}
	}
	st.Spool.FirstSeq, st.Spool.LastSeq, st.Spool.AckedSeq, st.Spool.LogId = s.firstSeq, s.lastSeq, s.acked, s.logID
	if len(s.events) == 0 {
		st.Spool.FirstSeq = 0
	}
	if !s.ackedAt.IsZero() {
		st.Spool.AckedAt = timestamppb.New(s.ackedAt)
	}
	st.Streamers = int64(len(s.streamers))
	st.Live = 0
	for _, x := range s.streamers {
		if x.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE {
			st.Live++
		}
	}
	st.Watchers = s.watchers
	return &kickmonv1.GetStatusResponse{Status: st}, nil
}
