// Package demo runs the whole kickmon system on one machine against the Kick
// simulator: a throwaway PostgreSQL, kicksim, kickcollector, kickwriter,
// kicknotify delivering to a local webhook sink whose notifications it
// prints, and (unless headless) kickview in the foreground. Everything it starts is
// stopped when it returns; its directory (logs, state) is removed unless it
// failed.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kickmon/kickmon/deploy/internal/proc"
	"github.com/kickmon/kickmon/deploy/internal/stack"
	"github.com/kickmon/kickmon/writer/pgtest"
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
	st := &stack.Stack{BinDir: o.BinDir}
	if err := st.CheckBinaries("kicksim", "kickcollector", "kickwriter", "kicknotify", "kickview", "kickctl"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kickdemo")
	if err != nil {
		return err
	}
	st.LogDir = dir
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
	if err := stack.EnsureDatabase(ctx, pg.URL("postgres"), "kickmon"); err != nil {
		return err
	}
	dsn := pg.URL("kickmon")
	defer func() {
		if serr := st.Stop(15 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()

	fmt.Fprintln(o.Stdout, "kickdemo: starting kicksim, kickcollector, kickwriter, kicknotify…")
	simOut, simW := io.Pipe()
	defer func() { _ = simOut.Close() }()
	realtime := o.Realtime
	if realtime == "" {
		realtime = "both"
	}
	if _, err := st.Start(proc.Spec{Name: "kicksim", Stdout: simW,
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
	// simEnv has KICK_WEB_URL (negotiation) besides KICK_PUSHER_URL and
	// KICK_CENTRIFUGO_URL (the fallbacks when negotiation fails).
	collEnv := append(simEnv, "KICKMON_LOG_LEVEL=info",
		"KICKMON_STATE_DIR="+filepath.Join(dir, "state"), "KICKMON_POLL_INTERVAL=5s", "KICKMON_OFFLINE_GRACE=10s",
		"KICK_REALTIME=auto")
	if _, err := st.StartCollector(ctx, collEnv, socket); err != nil {
		return err
	}
	if _, err := st.Start(proc.Spec{Name: "kickwriter",
		Env: []string{"KICKMON_SOCKET=" + socket, "KICKMON_LOG_LEVEL=info", "KICKMON_DATABASE_URL=" + dsn}}); err != nil {
		return err
	}

	// kicknotify delivers to a local webhook sink that prints what arrives
	// (into notifications.log while kickview owns the terminal).
	sk, err := startSink(o.Stdout)
	if err != nil {
		return err
	}
	defer sk.close()
	notifyConfig, err := sk.config(dir)
	if err != nil {
		return err
	}
	notifySocket := filepath.Join(dir, "notify.sock")
	if _, err := st.Start(proc.Spec{Name: "kicknotify", Env: []string{"KICKMON_LOG_LEVEL=info", "KICKMON_DATABASE_URL=" + dsn,
		"KICKMON_NOTIFY_CONFIG=" + notifyConfig, "KICKMON_NOTIFY_SOCKET=" + notifySocket}}); err != nil {
		return err
	}

	info := Info{Dir: dir, Socket: socket, DSN: dsn, Pids: st.Pids()}
	fmt.Fprintf(o.Stdout, `kickdemo: running. In another terminal:
  %s --socket %s streamers list
  %s --notify-socket %s notify status
  psql "%s" -c 'SELECT slug, is_live, title, viewer_count FROM kickmon.streamers ORDER BY slug'
  tail -f %s/notifications.log   # what kicknotify delivers to the local webhook sink
  logs: %s/*.log
`, st.Bin("kickctl"), socket, st.Bin("kickctl"), notifySocket, dsn, dir, dir)
	if o.OnReady != nil {
		o.OnReady(info)
	}

	if o.Headless {
		<-ctx.Done()
		return nil
	}
	// kickview owns the terminal: notifications go to a file meanwhile, and
	// a summary follows when it quits.
	nlog, err := os.Create(filepath.Join(dir, "notifications.log"))
	if err != nil {
		return err
	}
	defer func() { _ = nlog.Close() }()
	sk.setOutput(nlog)
	defer func() {
		got := sk.received()
		fmt.Fprintf(o.Stdout, "kickdemo: %d notifications arrived at the local webhook sink", len(got))
		if len(got) > 0 {
			fmt.Fprint(o.Stdout, "; the last ones:")
		}
		fmt.Fprintln(o.Stdout)
		for _, l := range got[max(0, len(got)-10):] {
			fmt.Fprintln(o.Stdout, l)
		}
	}()
	return st.View(ctx, socket, o.Stdin, o.Stdout, o.Stderr)
}
