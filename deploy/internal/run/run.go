// Package run is make run: kickmon on real Kick from a checkout, in one
// command. It reads Kick's credentials from the environment or a .env file,
// starts a durable PostgreSQL in its data directory (unless
// KICKMON_DATABASE_URL names one), kickcollector with its spool in the same
// directory, kickwriter, and kickview in the foreground. Quitting stops
// everything and keeps the data, so the next run resumes where this one
// stopped: the same spool and database, nothing recorded twice.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/joho/godotenv"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	"github.com/kickmon/kickmon/deploy/internal/stack"
	"github.com/kickmon/kickmon/writer/pgtest"
)

// ErrNoCredentials is returned when Kick's client id or secret is missing.
var ErrNoCredentials = errors.New("no Kick credentials (KICK_CLIENT_ID, KICK_CLIENT_SECRET)")

// howToGetCredentials is what a user without credentials reads.
const howToGetCredentials = `make run watches real Kick streamers through Kick's official API, which needs the client id and
secret of a Kick app: log in at https://kick.com, open Settings → Developer
(https://kick.com/settings/developer), create an app (any name; kickmon does not use its redirect
URL) and copy its Client ID and Client Secret into the environment or into a file named .env here:
    KICK_CLIENT_ID=...
    KICK_CLIENT_SECRET=...
    KICKMON_STREAMERS=xqc,4head
then run make run again. Meanwhile, make demo shows the whole system on a simulated Kick.
`

// Options configure a run.
type Options struct {
	BinDir   string   // where the binaries are (make build)
	Dir      string   // data directory: PostgreSQL, spool, socket, logs
	EnvFile  string   // settings file read if it exists (the environment wins)
	Environ  []string // the environment (os.Environ())
	Headless bool     // no kickview: run until ctx ends
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	// OnReady, if set, is called once everything serves.
	OnReady func(Info)
}

// Info tells how to reach a running system.
type Info struct {
	Socket string // kickcollector's socket
	DSN    string // the database
	Pids   []int  // every child process but PostgreSQL
}

// Settings merges the env file (if it exists) and the environment, which
// wins, and checks that Kick's credentials are there. Without them it
// explains on out how to get them and returns ErrNoCredentials.
func Settings(o Options, out io.Writer) (map[string]string, error) {
	set := map[string]string{}
	if o.EnvFile != "" {
		vals, err := godotenv.Read(o.EnvFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", o.EnvFile, err)
		default:
			set = vals
		}
	}
	for _, kv := range o.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			set[k] = v
		}
	}
	if strings.TrimSpace(set["KICK_CLIENT_ID"]) == "" || strings.TrimSpace(set["KICK_CLIENT_SECRET"]) == "" {
		fmt.Fprint(out, howToGetCredentials)
		return nil, ErrNoCredentials
	}
	return set, nil
}

// Run runs kickmon until kickview quits (or, headless, until ctx ends).
func Run(ctx context.Context, o Options) (err error) {
	set, err := Settings(o, o.Stderr)
	if err != nil {
		return err
	}
	// The daemons want absolute paths (they may change directory; systemd does).
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st := &stack.Stack{BinDir: o.BinDir, LogDir: filepath.Join(o.Dir, "logs")}
	if err := st.CheckBinaries("kickcollector", "kickwriter", "kickview", "kickctl"); err != nil {
		return err
	}
	// As root, PostgreSQL runs as an unprivileged user who must reach its directory.
	mode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		mode = 0o711
	}
	for _, d := range []string{o.Dir, st.LogDir} {
		if err := os.MkdirAll(d, mode); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	if err := os.Chmod(o.Dir, mode); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lock(o.Dir)
	if err != nil {
		return err
	}
	defer unlock()

	// PostgreSQL first, so that it is stopped last (defers run in reverse):
	// kickwriter still writes while it drains.
	dsn := strings.TrimSpace(set["KICKMON_DATABASE_URL"])
	if dsn == "" {
		fmt.Fprintf(o.Stdout, "kickrun: starting PostgreSQL in %s…\n", filepath.Join(o.Dir, "pg"))
		pg, err := pgtest.OpenCluster(filepath.Join(o.Dir, "pg"))
		if err != nil {
			return fmt.Errorf("postgresql in %s: %w", filepath.Join(o.Dir, "pg"), err)
		}
		defer pg.Close()
		if err := stack.EnsureDatabase(ctx, pg.URL("postgres"), "kickmon"); err != nil {
			return err
		}
		dsn = pg.URL("kickmon")
	}
	defer func() {
		if serr := st.Stop(30 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()

	env := make([]string, 0, len(set)+3)
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	socket := filepath.Join(o.Dir, "kickmon.sock")
	if strings.TrimSpace(set["KICKMON_STREAMERS"]) == "" {
		fmt.Fprintf(o.Stdout, "kickrun: KICKMON_STREAMERS is empty: add streamers with %s --socket %s streamers add SLUG\n", st.Bin("kickctl"), socket)
	}
	fmt.Fprintln(o.Stdout, "kickrun: starting kickcollector, kickwriter…")
	if _, err := st.StartCollector(ctx, append(env, "KICKMON_STATE_DIR="+filepath.Join(o.Dir, "state")), socket); err != nil {
		return err
	}
	if _, err := st.Start(proc.Spec{Name: "kickwriter",
		Env: append(env, "KICKMON_SOCKET="+socket, "KICKMON_DATABASE_URL="+dsn)}); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, `kickrun: running on Kick. Quitting stops everything and keeps the data in %s; make run again resumes.
  %s --socket %s streamers list
  logs: %s/*.log
`, o.Dir, st.Bin("kickctl"), socket, st.LogDir)
	if o.OnReady != nil {
		o.OnReady(Info{Socket: socket, DSN: dsn, Pids: st.Pids()})
	}
	if o.Headless {
		<-ctx.Done()
		return nil
	}
	return st.View(ctx, socket, o.Stdin, o.Stdout, o.Stderr)
}

// lock takes dir for this run: a second run on the same data would find the
// database and the socket in use and fail confusingly half-way.
func lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another make run is using %s: quit it first", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { _ = f.Close() }, nil
}
