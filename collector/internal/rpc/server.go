// Package rpc is kickcollector's gRPC API on its Unix socket: the
// kickmon.v1 CollectorService over an engine Backend and the spool, plus
// grpc.health.v1 and server reflection. Mutating calls are authorized by the
// peer's uid (SO_PEERCRED, see Authorizer).
//
// WatchEvents reads from the spool, never from a per-watcher queue: each
// watcher holds at most one page of events and wakes on the spool's Changed
// channel, so a slow watcher costs one page plus gRPC's flow-control window
// and cannot slow the engine or other watchers. A watcher whose next seq is
// dropped from the spool while it lags is ended with RESOURCE_EXHAUSTED; it
// reconnects from its last seq (and gets OUT_OF_RANGE if that is gone too).
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	"github.com/kickmon/kickmon/collector/internal/spool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Limits of the server, per client and in all.
const (
	// DefaultPageSize is how many events one WatchEvents message carries at most.
	DefaultPageSize = 256
	// DefaultPageBytes is how large one WatchEvents message may grow (one
	// event alone may exceed it): a quarter of gRPC's default 4 MiB
	// receive limit, so a page never nears it.
	DefaultPageBytes = 1 << 20
	// DefaultMaxWatchers caps open WatchEvents streams: each holds a
	// goroutine and a flow-control window (writer, viewers, kickctl).
	DefaultMaxWatchers = 64
	// maxConcurrentStreams caps the calls in flight on one connection.
	maxConcurrentStreams = 32
)

// ErrNotFound is wrapped by Backend errors for a streamer that is not
// watched; the API answers NOT_FOUND.
var ErrNotFound = errors.New("not found")

// ErrInvalidArgument is wrapped by Backend errors for a bad request; the
// API answers INVALID_ARGUMENT.
var ErrInvalidArgument = errors.New("invalid argument")

// ErrUnavailable is wrapped by Backend errors when the collector cannot
// serve the request now (shutting down); the server answers UNAVAILABLE.
var ErrUnavailable = errors.New("unavailable")

// Backend is the collector's engine as the API sees it. Errors wrapping
// ErrNotFound or ErrInvalidArgument, context errors and gRPC status errors
// keep their meaning (ErrUnavailable: UNAVAILABLE); anything else is
// INTERNAL.
type Backend interface {
	// List answers ListStreamers: the watched streamers (see the request's
	// options) and the seq of the last event reflected in them.
	List(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error)
	// Get returns a streamer by slug, or by user id when slug is empty.
	Get(ctx context.Context, slug string, userID int64) (*kickmonv1.Streamer, error)
	// Add resolves and watches slugs; one result per slug, in order.
	// channelID is 0 or comes with exactly one slug (checked by the server).
	Add(ctx context.Context, slugs []string, channelID int64) ([]*kickmonv1.StreamerResult, error)
	// Remove stops watching slugs; one result per slug, in order.
	Remove(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error)
	// Refresh asks for out-of-turn checks; empty slugs means every streamer.
	Refresh(ctx context.Context, slugs []string) ([]*kickmonv1.StreamerResult, error)
	// Status describes the collector; the server fills in spool and watchers.
	Status(ctx context.Context) (*kickmonv1.CollectorStatus, error)
}

// EventLog is what the server needs of the spool (*spool.Spool).
type EventLog interface {
	Read(from uint64, max int) ([]*kickmonv1.Event, error)
	Ack(seq uint64) (uint64, error)
	Changed() <-chan struct{}
	Status() *kickmonv1.SpoolStatus
	LogID() string
}

var _ EventLog = (*spool.Spool)(nil)

// Options configure a Server.
type Options struct {
	Backend Backend
	Spool   EventLog
	Logger  *slog.Logger
	// AdminGroup is KICKMON_ADMIN_GROUP: its members may call mutating RPCs.
	AdminGroup string
	// PageSize bounds events per WatchEvents message (default DefaultPageSize).
	PageSize int
	// PageBytes bounds the encoded size of a WatchEvents message (default
	// DefaultPageBytes).
	PageBytes int
	// MaxWatchers caps open WatchEvents streams (default DefaultMaxWatchers).
	MaxWatchers int
}

// Server serves the API. Create it with New, run Serve, stop with Shutdown.
type Server struct {
	kickmonv1.UnimplementedCollectorServiceServer

	backend  Backend
	spool    EventLog
	log      *slog.Logger
	auth     *Authorizer
	pageSize int
	limits   Options // PageBytes, MaxWatchers

	grpc     *grpc.Server
	health   *health.Server
	stopping chan struct{} // closed by Shutdown: watchers end
	stopOnce sync.Once
	watchers atomic.Int32
}

// mutating lists the methods only admins may call.
var mutating = map[string]bool{
	kickmonv1.CollectorService_AddStreamers_FullMethodName:     true,
	kickmonv1.CollectorService_RemoveStreamers_FullMethodName:  true,
	kickmonv1.CollectorService_RefreshStreamers_FullMethodName: true,
}

// writerOnly lists the methods only root and the collector's own uid (the
// writer runs as it) may call: an ack lets the spool drop events, so an
// admin (a viewer added to the group) acking ahead of the writer would
// lose them for good.
var writerOnly = map[string]bool{
	kickmonv1.CollectorService_AckEvents_FullMethodName: true,
}

// New builds a server; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil || opts.Spool == nil {
		return nil, errors.New("rpc: Backend and Spool are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.PageBytes <= 0 {
		opts.PageBytes = DefaultPageBytes
	}
	if opts.MaxWatchers <= 0 {
		opts.MaxWatchers = DefaultMaxWatchers
	}
	s := &Server{
		backend:  opts.Backend,
		spool:    opts.Spool,
		log:      opts.Logger.With(logkeys.Component, "rpc"),
		auth:     NewAuthorizer(opts.AdminGroup),
		pageSize: opts.PageSize,
		limits:   opts,
		health:   health.NewServer(),
		stopping: make(chan struct{}),
	}
	if err := s.auth.GroupErr(); err != nil {
		s.log.Warn("admin group unavailable: only root and the collector's user may call mutating RPCs",
			logkeys.Group, opts.AdminGroup, logkeys.Err, err.Error())
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(kickmonv1.CollectorService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.grpc = grpc.NewServer(
		grpc.Creds(peerCredentials{}),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.ChainUnaryInterceptor(s.authorize),
	)
	kickmonv1.RegisterCollectorServiceServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// Serve serves on lis until Shutdown; health turns SERVING when it starts.
// It returns nil after Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	select {
	case <-s.stopping:
		_ = lis.Close()
		return nil
	default:
	}
	s.health.Resume()
	s.log.Info("serving the API", logkeys.Addr, lis.Addr().String())
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve API on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Shutdown turns health NOT_SERVING, ends every WatchEvents stream, and
// stops gracefully; when ctx ends first it stops at once and returns an
// error wrapping ctx's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		close(s.stopping)
	})
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return fmt.Errorf("graceful stop of the API: %w", ctx.Err())
	}
}

// Watchers is how many WatchEvents streams are open.
func (s *Server) Watchers() int { return int(s.watchers.Load()) }

// authorize is the unary interceptor that guards mutating methods.
func (s *Server) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var err error
	switch {
	case writerOnly[info.FullMethod]:
		err = s.auth.AuthorizeSelf(peerOf(ctx), info.FullMethod)
	case mutating[info.FullMethod]:
		err = s.auth.Authorize(peerOf(ctx), info.FullMethod)
	}
	if err != nil {
		s.log.Warn("mutating call denied", logkeys.Method, info.FullMethod, logkeys.PeerUID, peerOf(ctx).UID)
		return nil, err
	}
	return handler(ctx, req)
}

// toStatus maps internal errors to gRPC status errors at the API boundary.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, spool.ErrAckBeyondLast):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, spool.ErrOutOfRange):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, spool.ErrCorrupt):
		return status.Error(codes.DataLoss, err.Error())
	case errors.Is(err, spool.ErrClosed), errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, "kickcollector is shutting down")
	}
	return status.Error(codes.Internal, err.Error())
}

// ListStreamers implements the API.
func (s *Server) ListStreamers(ctx context.Context, req *kickmonv1.ListStreamersRequest) (*kickmonv1.ListStreamersResponse, error) {
	res, err := s.backend.List(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return res, nil
}

// GetStreamer implements the API.
func (s *Server) GetStreamer(ctx context.Context, req *kickmonv1.GetStreamerRequest) (*kickmonv1.GetStreamerResponse, error) {
	var st *kickmonv1.Streamer
	var err error
	switch k := req.GetKey().(type) {
	case *kickmonv1.GetStreamerRequest_Slug:
		if k.Slug == "" {
			return nil, status.Error(codes.InvalidArgument, "slug is empty")
		}
		st, err = s.backend.Get(ctx, k.Slug, 0)
	case *kickmonv1.GetStreamerRequest_BroadcasterUserId:
		st, err = s.backend.Get(ctx, "", k.BroadcasterUserId)
	default:
		return nil, status.Error(codes.InvalidArgument, "slug or broadcaster_user_id is required")
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &kickmonv1.GetStreamerResponse{Streamer: st}, nil
}

// AddStreamers implements the API.
func (s *Server) AddStreamers(ctx context.Context, req *kickmonv1.AddStreamersRequest) (*kickmonv1.AddStreamersResponse, error) {
	if req.GetChannelId() != 0 && len(req.GetSlugs()) != 1 {
		return nil, status.Error(codes.InvalidArgument, "channel_id needs exactly one slug")
	}
	res, err := s.backend.Add(ctx, req.GetSlugs(), req.GetChannelId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &kickmonv1.AddStreamersResponse{Results: res}, nil
}

// RemoveStreamers implements the API.
func (s *Server) RemoveStreamers(ctx context.Context, req *kickmonv1.RemoveStreamersRequest) (*kickmonv1.RemoveStreamersResponse, error) {
	res, err := s.backend.Remove(ctx, req.GetSlugs())
	if err != nil {
		return nil, toStatus(err)
	}
	return &kickmonv1.RemoveStreamersResponse{Results: res}, nil
}

// RefreshStreamers implements the API.
func (s *Server) RefreshStreamers(ctx context.Context, req *kickmonv1.RefreshStreamersRequest) (*kickmonv1.RefreshStreamersResponse, error) {
	res, err := s.backend.Refresh(ctx, req.GetSlugs())
	if err != nil {
		return nil, toStatus(err)
	}
	return &kickmonv1.RefreshStreamersResponse{Results: res}, nil
}

// AckEvents implements the API: acks never move backwards; an ack beyond
// the last seq is INVALID_ARGUMENT; an ack for another log than this
// spool's is FAILED_PRECONDITION (LOG_CHANGED), so an old cursor never
// prunes a new log.
func (s *Server) AckEvents(ctx context.Context, req *kickmonv1.AckEventsRequest) (*kickmonv1.AckEventsResponse, error) {
	if want := req.GetLogId(); want != "" && want != s.spool.LogID() {
		return nil, kickapi.LogChangedError(want, s.spool.LogID())
	}
	acked, err := s.spool.Ack(req.GetSeq())
	if err != nil {
		return nil, toStatus(err)
	}
	return &kickmonv1.AckEventsResponse{AckedSeq: acked}, nil
}

// GetStatus implements the API: the backend's status with the spool and
// watchers filled in.
func (s *Server) GetStatus(ctx context.Context, req *kickmonv1.GetStatusRequest) (*kickmonv1.GetStatusResponse, error) {
	st, err := s.backend.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if st == nil {
		st = &kickmonv1.CollectorStatus{}
	}
	st.Spool = s.spool.Status()
	st.Watchers = s.watchers.Load()
	return &kickmonv1.GetStatusResponse{Status: st}, nil
}

// WatchEvents implements the API: replay from the spool in pages, then
// follow it, waking on each committed change. from_seq 0 is the oldest
// retained event; an older from_seq than that is OUT_OF_RANGE, one beyond
// last_seq+1 FAILED_PRECONDITION, and so is a log_id other than the
// spool's (with the ErrorInfo reason LOG_CHANGED); falling
// behind the retained range later is RESOURCE_EXHAUSTED; Shutdown ends the
// stream with UNAVAILABLE.
func (s *Server) WatchEvents(req *kickmonv1.WatchEventsRequest, stream grpc.ServerStreamingServer[kickmonv1.WatchEventsResponse]) error {
	if n := s.watchers.Add(1); int(n) > s.limits.MaxWatchers {
		s.watchers.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "too many event watchers (%d open, the limit is %d): close one (kickview, kickctl events tail) and retry", n-1, s.limits.MaxWatchers)
	}
	defer s.watchers.Add(-1)
	ctx := stream.Context()
	logID := s.spool.LogID()
	if want := req.GetLogId(); want != "" && want != logID {
		return kickapi.LogChangedError(want, logID)
	}
	next, started := req.GetFromSeq(), false
	for {
		select {
		case <-s.stopping:
			return status.Error(codes.Unavailable, "kickcollector is shutting down; reconnect from your last seq")
		default:
		}
		changed := s.spool.Changed() // before Read: no change can slip between them
		events, err := s.spool.Read(next, s.pageSize)
		var oor *spool.OutOfRangeError
		var beyond *spool.BeyondLastError
		switch {
		case errors.As(err, &beyond):
			// A cursor ahead of the log means the log is not the one the
			// client followed (a spool moved aside and started anew):
			// waiting would hide that, and seqs would be reused.
			return status.Errorf(codes.FailedPrecondition, "from_seq %d is beyond the last seq %d: this collector's event log is not the one you followed (was its spool replaced?)", beyond.From, beyond.Last)
		case errors.As(err, &oor) && !started:
			return status.Errorf(codes.OutOfRange, "from_seq %d was dropped; oldest retained is %d", oor.From, oor.First)
		case errors.As(err, &oor):
			return status.Errorf(codes.ResourceExhausted, "watcher fell behind: seq %d was dropped from the spool (oldest retained is %d); reconnect from your last seq", oor.From, oor.First)
		case err != nil:
			return toStatus(err)
		}
		if !started {
			// Accepted: say so now, so that a client of an idle log
			// knows it is subscribed, and to which log.
			if err := stream.SendHeader(metadata.Pairs(kickapi.HeaderLogID, logID)); err != nil {
				return err
			}
		}
		started = true
		// The page's log id counts against the limit too.
		events = fitPage(events, s.limits.PageBytes-proto.Size(&kickmonv1.WatchEventsResponse{LogId: logID}))
		if len(events) > 0 {
			if err := stream.Send(&kickmonv1.WatchEventsResponse{Events: events, LogId: logID}); err != nil {
				return err
			}
			next = events[len(events)-1].GetSeq() + 1
			continue
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stopping:
		case <-changed:
		}
	}
}

// fitPage cuts events to the longest prefix whose encoded size stays within
// maxBytes, always keeping the first; the rest are read again for the
// next page.
func fitPage(events []*kickmonv1.Event, maxBytes int) []*kickmonv1.Event {
	size := 0
	for i, ev := range events {
		// Each event is a length-delimited field of the response: its size
		// plus a tag and a length prefix.
		n := proto.Size(ev)
		size += n + 1 + protowire.SizeVarint(uint64(n))
		if size > maxBytes && i > 0 {
			return events[:i]
		}
	}
	return events
}
