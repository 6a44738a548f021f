package kickapi

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Explain names the socket and what is wrong with it, in words an
// operator can act on.
func TestExplain(t *testing.T) {
	dir, err := os.MkdirTemp("", "kapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()

	live := filepath.Join(dir, "live.sock")
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ll.Close() })

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unavailable := status.Error(codes.Unavailable, "kickcollector is shutting down")
	tests := []struct {
		name string
		path string
		err  error
		want []string
	}{
		{"missing", filepath.Join(dir, "none.sock"), unavailable, []string{"cannot reach kickcollector at", "no such file", "systemctl status kickmon-collector"}},
		{"stale", stale, unavailable, []string{"connection refused (stale socket)"}},
		{"not a socket", plain, unavailable, []string{"not a socket"}},
		{"answers", live, unavailable, []string{"is unavailable: kickcollector is shutting down"}},
		{"denied", live, status.Error(codes.PermissionDenied, "not in group kickmon"), []string{"permission denied by kickcollector", "KICKMON_ADMIN_GROUP"}},
		{"other", live, status.Error(codes.NotFound, "streamer is not watched"), []string{"streamer is not watched"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := Explain(tt.path, tt.err).Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Explain = %q, want it to contain %q", msg, w)
				}
			}
		})
	}
	if Explain(live, nil) != nil {
		t.Error("Explain(nil) is not nil")
	}
}
