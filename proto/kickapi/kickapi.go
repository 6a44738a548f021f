// Package kickapi is the client side of kickcollector's gRPC API: the default
// socket path and a Dial that every kickmon client (writer, viewer, ctl) uses.
package kickapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/kickmon/kickmon/proto/backoff"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// DefaultSocketPath is where kickcollector listens unless KICKMON_SOCKET says otherwise.
const DefaultSocketPath = "/run/kickmon/kickmon.sock"

// SocketPath returns the socket named by KICKMON_SOCKET (via getenv), or the default.
func SocketPath(getenv func(string) string) string {
	if p := getenv("KICKMON_SOCKET"); p != "" {
		return p
	}
	return DefaultSocketPath
}

// Conn is a connection to kickcollector.
type Conn struct {
	kickmonv1.CollectorServiceClient
	cc   *grpc.ClientConn
	path string
}

// Path is the socket path the connection was made to.
func (c *Conn) Path() string { return c.path }

// ClientConn exposes the underlying connection (for health checks).
func (c *Conn) ClientConn() *grpc.ClientConn { return c.cc }

// Close closes the connection.
func (c *Conn) Close() error { return c.cc.Close() }

// Dial returns a client for the collector at the socket path. The connection
// is lazy and reconnects with backoff, so clients started before the
// collector wait for it; use WaitForReady call options or Explain to turn
// connection errors into something an operator can act on.
func Dial(path string, opts ...grpc.DialOption) (*Conn, error) {
	if path == "" {
		path = DefaultSocketPath
	}
	local := backoff.For(backoff.Local, 0)
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			// The shared policy for the collector's socket; gRPC's jitter
			// of 1 draws each wait in [0, 2·step], its nearest to full
			// jitter, so the steps stop at half the cap.
			Backoff: grpcbackoff.Config{
				BaseDelay:  local.Base / 2,
				Multiplier: 2,
				Jitter:     1,
				MaxDelay:   local.Max / 2,
			},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}
	cc, err := grpc.NewClient("unix://"+path, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to kickcollector at %s: %w", path, err)
	}
	return &Conn{CollectorServiceClient: kickmonv1.NewCollectorServiceClient(cc), cc: cc, path: path}, nil
}

// Explain turns an RPC error into an actionable message naming the socket:
// a missing or refused socket suggests checking the service, a permission
// problem suggests the admin group. Other errors are returned unchanged.
func Explain(path string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		problem, denied, answers := socketProblem(path)
		switch {
		case denied:
			return fmt.Errorf("cannot reach kickcollector at %s: %s", path, problem)
		case answers:
			// The collector itself said why (e.g. it is shutting down).
			return fmt.Errorf("kickcollector at %s is unavailable: %s", path, st.Message())
		}
		return fmt.Errorf("cannot reach kickcollector at %s: %s (is it running? systemctl status kickmon-collector)", path, problem)
	case codes.PermissionDenied:
		return fmt.Errorf("permission denied by kickcollector at %s: %s (add yourself to the admin group, KICKMON_ADMIN_GROUP, default kickmon)", path, st.Message())
	}
	return err
}

// socketProblem says, in words, why nothing answers at path, whether it is
// a permission problem (the daemon may be running fine), and whether the
// socket accepts connections after all.
func socketProblem(path string) (problem string, denied, answers bool) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file", false, false
	case errors.Is(err, fs.ErrPermission):
		return "permission denied on the socket's directory (add yourself to the kickmon group)", true, false
	case err != nil:
		return err.Error(), false, false
	case fi.Mode()&fs.ModeSocket == 0:
		return "not a socket", false, false
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return "permission denied on the socket (add yourself to its group, kickmon by default)", true, false
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "connection refused (stale socket)", false, false
		}
		return err.Error(), false, false
	}
	_ = c.Close()
	return "the socket accepts connections", false, true
}

// IsOutOfRange reports whether err is WatchEvents' answer to a from_seq that
// the collector's spool no longer holds.
func IsOutOfRange(err error) bool {
	return status.Code(err) == codes.OutOfRange
}

// Ping checks that the collector answers, within ctx.
func Ping(ctx context.Context, c *Conn) error {
	_, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{}, grpc.WaitForReady(false))
	return Explain(c.path, err)
}
