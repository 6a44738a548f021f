package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/kickmon/kickmon/proto/kickapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// dial connects to the collector at the chosen socket; the connection is
// lazy, so errors show up on the first call (see rpcError).
func (e *env) dial() (*kickapi.Conn, error) {
	c, err := kickapi.Dial(e.socket)
	if err != nil {
		return nil, fmt.Errorf("connect to kickcollector at %s: %w", e.socket, err)
	}
	return c, nil
}

// unary runs one call under the unary timeout and turns its error into an
// actionable message.
func (e *env) unary(ctx context.Context, op string, call func(ctx context.Context, c *kickapi.Conn) error) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return e.rpcError(op, e.withTimeout(ctx, func(ctx context.Context) error { return call(ctx, c) }))
}

// withTimeout runs one call under the unary timeout.
func (e *env) withTimeout(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	return call(ctx)
}

// rpcError explains err from the call op: the socket and what to do when the
// collector cannot be reached or refuses, the server's message otherwise.
func (e *env) rpcError(op string, err error) error {
	if err == nil {
		return nil
	}
	if x := kickapi.Explain(e.socket, err); x != err {
		return x
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: kickcollector at %s did not answer within %s", op, e.socket, e.timeout)
	case codes.Canceled:
		return fmt.Errorf("%s: interrupted", op)
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists:
		return fmt.Errorf("%s: %s", op, st.Message())
	}
	return fmt.Errorf("%s: %s (%s)", op, st.Message(), st.Code())
}

// isCanceled reports whether err is the caller's own cancellation (Ctrl-C).
func isCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled)
}
