package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/writer/pgtest"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCheckAndUsage(t *testing.T) {
	good := writeConfig(t, "targets: [{name: d, type: discord, url: 'https://discord.com/api/webhooks/1/SECRET'}]\n")
	bad := writeConfig(t, "targets: [{name: d, type: discord, url: 'http://example.com/SECRET'}, {name: d, type: fax}]\n")
	tests := []struct {
		name    string
		args    []string
		config  string
		wantOut string
		wantErr []string
		usage   bool
	}{
		{"check ok", []string{"check"}, good, "configuration valid: 1 target(s)", nil, false},
		{"check lists every problem", []string{"check"}, bad, "", []string{"plain http", "name is used", `type "fax"`, "4 problems"}, false},
		{"unknown command", []string{"frobnicate"}, good, "", []string{"unknown command"}, true},
		{"unknown flag", []string{"--bogus"}, good, "", []string{"bogus"}, true},
		{"version", []string{"version"}, good, "kicknotify dev", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(t.Context(), tt.args, env(map[string]string{"KICKMON_DATABASE_URL": "postgres:///x", "KICKMON_NOTIFY_CONFIG": tt.config}), &out, &errb)
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("err = %v", err)
			}
			if errors.Is(err, ErrUsage) != tt.usage {
				t.Errorf("usage error = %v, want %v", errors.Is(err, ErrUsage), tt.usage)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error quotes a target URL: %v", err)
			}
		})
	}
}

// The daemon waits for River's tables, says READY to systemd once it
// serves, answers on its status socket, and stops cleanly when cancelled.
func TestDaemonReadyStatusAndStop(t *testing.T) {
	db := pgtest.New(t)
	dir, err := os.MkdirTemp("", "kn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	notifyAddr := filepath.Join(dir, "sd.sock")
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyAddr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sd.Close() }()
	t.Setenv("NOTIFY_SOCKET", notifyAddr)
	socket := filepath.Join(dir, "n.sock")
	cfg := writeConfig(t, "targets: [{name: d, type: discord, url: 'https://discord.com/api/webhooks/1/x'}]\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, nil, env(map[string]string{"KICKMON_DATABASE_URL": db.URL, "KICKMON_NOTIFY_CONFIG": cfg, "KICKMON_NOTIFY_SOCKET": socket}), &bytes.Buffer{}, tWriter{t})
	}()

	// Not ready while the queue's tables are missing; the writer migrates meanwhile.
	datagrams := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sd.Read(buf)
			if err != nil {
				close(datagrams)
				return
			}
			datagrams <- string(buf[:n])
		}
	}()
	waitDatagram(t, datagrams, "STATUS=waiting for the queue")
	migrateRiver(t, db.URL)
	waitDatagram(t, datagrams, "READY=1")

	conn, err := kickapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	st, err := kickmonv1.NewNotifyServiceClient(conn.ClientConn()).GetNotifierStatus(ctx, &kickmonv1.GetNotifierStatusRequest{})
	if err != nil || len(st.GetTargets()) != 1 || st.GetTargets()[0].GetName() != "d" {
		t.Fatalf("GetNotifierStatus = %v, %v", st, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("kicknotify did not stop")
	}
	waitDatagram(t, datagrams, "STOPPING=1")
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status socket left behind: %v", err)
	}
}

func waitDatagram(t *testing.T, ch <-chan string, prefix string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case d, ok := <-ch:
			if !ok {
				t.Fatalf("notify socket closed before %q", prefix)
			}
			if strings.HasPrefix(d, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q from kicknotify", prefix)
		}
	}
}

func migrateRiver(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA kickmon_river`); err != nil {
		t.Fatal(err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: "kickmon_river", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatal(err)
	}
}

// tWriter sends the daemon's log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
