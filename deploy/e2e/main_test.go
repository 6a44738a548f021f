// Package e2e runs the real kickmon binaries together against kicksim and a
// throwaway PostgreSQL: what an operator would run, end to end.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	"github.com/kickmon/kickmon/writer/pgtest"
)

// bin holds the binaries, built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kickmon-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	// Other users (PostgreSQL runs as one when tests run as root) need not
	// read the binaries, but the collector's child of a second uid might.
	_ = os.Chmod(dir, 0o755)
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"./collector/cmd/kickcollector", "./collector/cmd/kicksim", "./writer/cmd/kickwriter", "./viewer/cmd/kickview", "./ctl/cmd/kickctl", "./notify/cmd/kicknotify")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build binaries: %v\n%s", err, out)
		return 1
	}
	bin = dir
	return pgtest.Main(m)
}

// system is kicksim, kickcollector and kickwriter on one database.
type system struct {
	t        *testing.T
	dir      string
	socket   string
	control  string // kicksim's control URL
	simEnv   []string
	db       *pgtest.DB
	coll     *proc.Process
	writer   *proc.Process
	collEnv  []string
	writeEnv []string
}

func startSystem(t *testing.T, streamers int, extraColl ...string) *system {
	t.Helper()
	return startSystemSim(t, nil, streamers, extraColl...)
}

// startSystemSim is startSystem with extra kicksim flags (later ones win).
func startSystemSim(t *testing.T, simArgs []string, streamers int, extraColl ...string) *system {
	t.Helper()
	return startSystemHook(t, simArgs, streamers, nil, extraColl...)
}

// startSystemHook is startSystemSim with a hook run once kicksim serves,
// before the collector starts (e.g. to set a kicksim fault through its
// control API).
func startSystemHook(t *testing.T, simArgs []string, streamers int, beforeCollector func(*system), extraColl ...string) *system {
	t.Helper()
	dir, err := os.MkdirTemp("", "kme2e")
	if err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, dir: dir, socket: filepath.Join(dir, "k.sock")}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"kicksim", "kickcollector", "kickwriter"} {
				if b, err := os.ReadFile(filepath.Join(dir, name+".log")); err == nil {
					t.Logf("%s.log (last 4 KiB):\n%s", name, tail(b, 4096))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	s.db = pgtest.New(t)

	out, w := io.Pipe()
	sim := s.start(proc.Spec{Name: "kicksim", Path: filepath.Join(bin, "kicksim"), Stdout: w,
		Args: append([]string{"--streamers", fmt.Sprint(streamers), "--listen", "127.0.0.1:0", "--live-fraction", "0"}, simArgs...)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.simEnv, err = proc.ReadEnv(ctx, out, func(k string) bool { return k == "KICKMON_STREAMERS" })
	if err != nil {
		t.Fatalf("kicksim env: %v", err)
	}
	_ = sim
	for _, kv := range s.simEnv {
		if v, ok := strings.CutPrefix(kv, "KICKSIM_CONTROL_URL="); ok {
			s.control = v
		}
	}
	common := []string{"KICKMON_SOCKET=" + s.socket, "KICKMON_LOG_LEVEL=debug"}
	s.collEnv = append(append(append([]string{}, s.simEnv...), common...),
		"KICKMON_STATE_DIR="+filepath.Join(dir, "state"), "KICKMON_POLL_INTERVAL=1s", "KICKMON_OFFLINE_GRACE=3s", "KICKMON_API_BUDGET=6000")
	s.collEnv = append(s.collEnv, extraColl...)
	s.writeEnv = append(common, "KICKMON_DATABASE_URL="+s.db.URL, "KICKMON_BATCH_INTERVAL=50ms")
	if beforeCollector != nil {
		beforeCollector(s)
	}
	s.startCollector()
	s.startWriter()
	return s
}

func (s *system) start(spec proc.Spec) *proc.Process {
	s.t.Helper()
	spec.LogDir = s.dir
	p, err := proc.Start(spec)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return p
}

func (s *system) startCollector() {
	s.t.Helper()
	s.coll = s.start(proc.Spec{Name: "kickcollector", Path: filepath.Join(bin, "kickcollector"), Env: s.collEnv})
	waitFor(s.t, 30*time.Second, "collector serving", func() bool {
		out, err := s.ctl("status")
		return err == nil && strings.Contains(out, "spool")
	})
}

func (s *system) startWriter() {
	s.t.Helper()
	s.writer = s.start(proc.Spec{Name: "kickwriter", Path: filepath.Join(bin, "kickwriter"), Env: s.writeEnv})
}

// ctl runs kickctl against the system's collector.
func (s *system) ctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(bin, "kickctl"), append([]string{"--socket", s.socket}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// sim calls kicksim's control API.
func (s *system) sim(method, path string, body any) []byte {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.control+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("kicksim %s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		s.t.Fatalf("kicksim %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

type simStreamer struct {
	UserID    int64  `json:"user_id"`
	ChannelID int64  `json:"channel_id"`
	Slug      string `json:"slug"`
}

func (s *system) streamers() []simStreamer {
	var out []simStreamer
	if err := json.Unmarshal(s.sim("GET", "/streamers", nil), &out); err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *system) query(sql string, args ...any) [][]any {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.db.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil
	}
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func (s *system) count(sql string, args ...any) int64 {
	s.t.Helper()
	rows := s.query(sql, args...)
	if len(rows) == 0 {
		return -1
	}
	n, _ := rows[0][0].(int64)
	return n
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func countDSN(t *testing.T, dsn, sql string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return -1
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return -1
	}
	return n
}
