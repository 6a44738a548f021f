// Package demo runs the whole kickmon system on one machine against the Kick
// simulator: a throwaway PostgreSQL, kicksim, kickcollector, kickwriter and
// (unless headless) kickview in the foreground. Everything it starts is
// stopped when it returns; its directory (logs, state) is removed unless it
// failed.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/writer/pgtest"
	"google.golang.org/grpc"
)

// Options configure a demo run.
type Options struct {
	BinDir    string  // where the five binaries are
	Streamers int     // size of the simulated world
	Rate      float64 // simulated changes per second
	Headless  bool    // no kickview: run until ctx ends
	// Realtime is what kicksim serves and offers: pusher, centrifugo, both
	// or none ("" = both). The collector negotiates (KICK_REALTIME=auto),
	// so it runs on Centrifugo whenever that is offered.
	Realtime string
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	// OnReady, if set, is called once everything serves.
	OnReady func(Info)
}

// Info tells how to reach the running demo.
type Info struct {
	Dir    string // logs and state
	Socket string // kickcollector's socket
	DSN    string // the PostgreSQL database
	Pids   []int  // every child process but PostgreSQL (stopped with the demo too)
}

// Run runs the demo until kickview quits (or, headless, until ctx ends).
func Run(ctx context.Context, o Options) (err error) {
	bin := func(name string) string { return filepath.Join(o.BinDir, name) }
	for _, b := range []string{"kicksim", "kickcollector", "kickwriter", "kickview", "kickctl"} {
		if _, err := os.Stat(bin(b)); err != nil {
			return fmt.Errorf("%s: %w (run make build first)", bin(b), err)
		}
	}
	dir, err := os.MkdirTemp("", "kickdemo")
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			_ = os.RemoveAll(dir)
			return
		}
		// The error points at the logs: keep them.
		fmt.Fprintf(o.Stderr, "kickdemo: logs kept in %s (remove it when done)\n", dir)
	}()
	// Children write as the PostgreSQL user may not; keep it private otherwise.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}

	// PostgreSQL first, so that it is stopped last (defers run in reverse):
	// kickwriter still writes while it drains.
	fmt.Fprintln(o.Stdout, "kickdemo: starting PostgreSQL…")
	pg, err := pgtest.StartCluster()
	if err != nil {
		return fmt.Errorf("postgresql: %w", err)
	}
	defer pg.Close()
	if err := createDatabase(ctx, pg.URL("postgres"), "kickmon"); err != nil {
		return err
	}
	dsn := pg.URL("kickmon")

	var procs []*proc.Process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			if serr := procs[i].Stop(15 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	start := func(s proc.Spec) (*proc.Process, error) {
		s.LogDir = dir
		p, err := proc.Start(s)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}

	fmt.Fprintln(o.Stdout, "kickdemo: starting kicksim, kickcollector, kickwriter…")
	simOut, simW := io.Pipe()
	defer func() { _ = simOut.Close() }()
	realtime := o.Realtime
	if realtime == "" {
		realtime = "both"
	}
	if _, err := start(proc.Spec{Name: "kicksim", Path: bin("kicksim"), Stdout: simW,
		Args: []string{"--streamers", strconv.Itoa(o.Streamers), "--rate", strconv.FormatFloat(o.Rate, 'f', -1, 64),
			"--realtime", realtime, "--listen", "127.0.0.1:0"}}); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	simEnv, err := proc.ReadEnv(rctx, simOut, func(k string) bool { return k == "KICKMON_STREAMERS" })
	cancel()
	if err != nil {
		return fmt.Errorf("kicksim did not print its environment (see %s/kicksim.log): %w", dir, err)
	}

	socket := filepath.Join(dir, "kickmon.sock")
	common := []string{"KICKMON_SOCKET=" + socket, "KICKMON_LOG_LEVEL=info"}
	// simEnv has KICK_WEB_URL (negotiation) besides KICK_PUSHER_URL and
	// KICK_CENTRIFUGO_URL (the fallbacks when negotiation fails).
	collEnv := append(append(simEnv, common...),
		"KICKMON_STATE_DIR="+filepath.Join(dir, "state"), "KICKMON_POLL_INTERVAL=5s", "KICKMON_OFFLINE_GRACE=10s",
		"KICK_REALTIME=auto")
	coll, err := start(proc.Spec{Name: "kickcollector", Path: bin("kickcollector"), Env: collEnv})
	if err != nil {
		return err
	}
	if err := waitCollector(ctx, coll, socket, 30*time.Second); err != nil {
		return fmt.Errorf("kickcollector (see %s/kickcollector.log): %w", dir, err)
	}
	if _, err := start(proc.Spec{Name: "kickwriter", Path: bin("kickwriter"),
		Env: append(common, "KICKMON_DATABASE_URL="+dsn)}); err != nil {
		return err
	}

	info := Info{Dir: dir, Socket: socket, DSN: dsn}
	for _, p := range procs {
		info.Pids = append(info.Pids, p.Pid())
	}
	fmt.Fprintf(o.Stdout, `kickdemo: running. In another terminal:
  %s --socket %s streamers list
  psql "%s" -c 'SELECT slug, is_live, title, viewer_count FROM kickmon.streamers ORDER BY slug'
  logs: %s/*.log
`, bin("kickctl"), socket, dsn, dir)
	if o.OnReady != nil {
		o.OnReady(info)
	}

	if o.Headless {
		<-ctx.Done()
		return nil
	}
	view, err := start(proc.Spec{Name: "kickview", Path: bin("kickview"),
		Args: []string{"--socket", socket, "--log-file", filepath.Join(dir, "kickview.log")},
		Process: func(c *exec.Cmd) {
			c.Stdin, c.Stdout, c.Stderr = o.Stdin, o.Stdout, o.Stderr
		}})
	if err != nil {
		return err
	}
	select {
	case <-view.Done():
		return view.Err()
	case <-ctx.Done():
		return nil
	}
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to postgresql: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// waitCollector waits until the collector answers on its socket, and gives
// up at once if it exits.
func waitCollector(ctx context.Context, coll *proc.Process, socket string, timeout time.Duration) error {
	c, err := kickapi.Dial(socket)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-coll.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err = c.GetStatus(ctx, &kickmonv1.GetStatusRequest{}, grpc.WaitForReady(true))
	switch {
	case err == nil:
		return nil
	case isDone(coll.Done()):
		return fmt.Errorf("exited before serving: %v", coll.Err())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no answer on %s within %s", socket, timeout)
	}
	return kickapi.Explain(socket, err)
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
