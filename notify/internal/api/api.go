// Package api serves kicknotify's NotifyService (GetNotifierStatus,
// SendTest) on its own Unix socket, with grpc.health.v1 and reflection,
// for kickctl and grpcurl.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/kickmon/kickmon/notify/internal/jobs"
	"github.com/kickmon/kickmon/notify/internal/logkeys"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Notifier is what the service reports on and tests through.
type Notifier interface {
	Status(ctx context.Context) (*kickmonv1.GetNotifierStatusResponse, error)
	SendTest(ctx context.Context, target string) (string, error)
}

type server struct {
	kickmonv1.UnimplementedNotifyServiceServer
	n       Notifier
	started time.Time
	log     *slog.Logger
}

func (s *server) GetNotifierStatus(ctx context.Context, _ *kickmonv1.GetNotifierStatusRequest) (*kickmonv1.GetNotifierStatusResponse, error) {
	st, err := s.n.Status(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	st.StartedAt = timestamppb.New(s.started)
	return st, nil
}

func (s *server) SendTest(ctx context.Context, req *kickmonv1.SendTestRequest) (*kickmonv1.SendTestResponse, error) {
	line, err := s.n.SendTest(ctx, req.GetTarget())
	switch {
	case errors.Is(err, jobs.ErrNoTarget):
		return nil, status.Errorf(codes.NotFound, "%v", err)
	case err != nil:
		s.log.Warn("test message failed", logkeys.Target, req.GetTarget(), logkeys.Err, err)
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	}
	s.log.Info("test message sent", logkeys.Target, req.GetTarget(), logkeys.Status, line)
	return &kickmonv1.SendTestResponse{Status: line}, nil
}

// Serve serves on lis until ctx ends, then stops gracefully (5 s at most).
func Serve(ctx context.Context, lis net.Listener, n Notifier, log *slog.Logger) error {
	g := grpc.NewServer()
	kickmonv1.RegisterNotifyServiceServer(g, &server{n: n, started: time.Now(), log: log})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	<-done
	return nil
}
