package unixsock

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListen(t *testing.T) {
	tests := []struct {
		name    string
		sock    string // relative to a fresh temp dir
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{name: "new socket", sock: "k.sock"},
		{name: "creates the parent directory", sock: "run/kickmon/k.sock"},
		{
			name: "removes a stale socket",
			sock: "k.sock",
			prepare: func(t *testing.T, path string) {
				lis, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				lis.(*net.UnixListener).SetUnlinkOnClose(false)
				_ = lis.Close()
				if _, err := os.Stat(path); err != nil {
					t.Fatalf("stale socket not left behind: %v", err)
				}
			},
		},
		{
			name: "refuses a live socket",
			sock: "k.sock",
			prepare: func(t *testing.T, path string) {
				lis, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = lis.Close() })
			},
			wantErr: "another process answers on this socket",
		},
		{
			name: "never removes a file that is not a socket",
			sock: "k.sock",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "kl")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			path := filepath.Join(dir, tt.sock)
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			lis, err := Listen(path, "kickcollector")
			if tt.wantErr != "" {
				if err == nil {
					_ = lis.Close()
					t.Fatal("Listen succeeded")
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s and say %q", err, path, tt.wantErr)
				}
				if _, err := os.Stat(path); err != nil {
					t.Errorf("existing path removed: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			defer lis.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != SocketMode {
				t.Errorf("socket mode = %v, want a socket with %o", fi.Mode(), SocketMode)
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial the new socket: %v", err)
			}
			_ = c.Close()
		})
	}
}
