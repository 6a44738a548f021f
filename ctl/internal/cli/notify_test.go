package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeNotifier stands in for kicknotify's NotifyService (the real one runs
// in deploy/e2e's TestNotificationsEndToEnd).
type fakeNotifier struct {
	kickmonv1.UnimplementedNotifyServiceServer
	status *kickmonv1.GetNotifierStatusResponse
}

func (f fakeNotifier) GetNotifierStatus(context.Context, *kickmonv1.GetNotifierStatusRequest) (*kickmonv1.GetNotifierStatusResponse, error) {
	return f.status, nil
}

// testNotifierStatus is a kicknotify with one healthy target and one that
// keeps failing (a delivery given up, no success since its last error).
func testNotifierStatus() *kickmonv1.GetNotifierStatusResponse {
	return &kickmonv1.GetNotifierStatusResponse{
		EventsPending: 1, OldestPendingAt: at(12 * time.Second), StartedAt: at(time.Hour),
		Targets: []*kickmonv1.TargetStatus{
			{Name: "team-discord", Type: "discord", Pending: 1, Delivered: 14, LastDeliveredAt: at(3 * time.Minute)},
			{Name: "ops-hook", Type: "webhook", Retrying: 2, Delivered: 3, Failed: 1, LastDeliveredAt: at(time.Hour),
				LastError: "webhook target answered 500 Internal Server Error: oops", LastErrorAt: at(20 * time.Second)},
		},
	}
}

func (fakeNotifier) SendTest(_ context.Context, req *kickmonv1.SendTestRequest) (*kickmonv1.SendTestResponse, error) {
	if req.GetTarget() != "team-discord" {
		return nil, status.Errorf(codes.NotFound, "unknown target: no target named %q", req.GetTarget())
	}
	return &kickmonv1.SendTestResponse{Status: "204 No Content"}, nil
}

// startFakeNotifier serves st as kicknotify's status and returns its socket.
func startFakeNotifier(t *testing.T, st *kickmonv1.GetNotifierStatusResponse) string {
	dir, err := os.MkdirTemp("", "kctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "n.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	kickmonv1.RegisterNotifyServiceServer(g, fakeNotifier{status: st})
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return path
}

func TestNotifyGolden(t *testing.T) {
	notifier := startFakeNotifier(t, testNotifierStatus())
	tests := []struct {
		name   string
		args   []string
		socket string // kicknotify's; "none": a path with nothing there
		code   int
	}{
		{name: "notify_status", args: []string{"notify", "status"}},
		{name: "notify_status_json", args: []string{"notify", "status", "-o", "json"}},
		{name: "notify_test", args: []string{"notify", "test", "team-discord"}},
		{name: "notify_test_unknown", args: []string{"notify", "test", "nope"}, code: ExitError},
		{name: "notify_test_usage", args: []string{"notify", "test"}, code: ExitUsage},
		{name: "notify_not_running", args: []string{"notify", "status"}, socket: "none", code: ExitError},
		{name: "status_with_notifier", args: []string{"status"}},
		{name: "status_notifier_not_running", args: []string{"status"}, socket: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fixture(t)
			var stdout, stderr syncBuffer
			e := testEnv(srv.Path(), &stdout, &stderr)
			e.notifySocket = notifier
			if tt.socket == "none" {
				e.notifySocket = "/nonexistent/kickmon-notify/notify.sock"
			}
			code := e.run(t.Context(), tt.args)
			r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, r.stdout, r.stderr)
			}
			checkGolden(t, tt.name, strings.ReplaceAll(r.golden(srv.Path(), tt.args), notifier, "$NOTIFY_SOCKET"))
		})
	}
}
