// Package stack runs kickmon's programs as children of one process, the way
// make demo and make run do: kickcollector (waited for until it serves),
// kickwriter and kickview in the foreground, each logging to a file in one
// directory, all stopped in reverse order of start.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"google.golang.org/grpc"
)

// Stack is the running children.
type Stack struct {
	BinDir string // where the binaries are
	LogDir string // where each child's NAME.log goes
	procs  []*proc.Process
}

// Bin is the path of binary name.
func (s *Stack) Bin(name string) string { return filepath.Join(s.BinDir, name) }

// CheckBinaries fails, naming the first missing one, unless every binary is there.
func (s *Stack) CheckBinaries(names ...string) error {
	for _, b := range names {
		if _, err := os.Stat(s.Bin(b)); err != nil {
			return fmt.Errorf("%s: %w (run make build first)", s.Bin(b), err)
		}
	}
	return nil
}

// Start starts a child logging into LogDir; Stop stops it.
func (s *Stack) Start(spec proc.Spec) (*proc.Process, error) {
	spec.LogDir = s.LogDir
	if spec.Path == "" {
		spec.Path = s.Bin(spec.Name)
	}
	p, err := proc.Start(spec)
	if err == nil {
		s.procs = append(s.procs, p)
	}
	return p, err
}

// StartCollector starts kickcollector with env added and waits until it
// answers on socket.
func (s *Stack) StartCollector(ctx context.Context, env []string, socket string) (*proc.Process, error) {
	coll, err := s.Start(proc.Spec{Name: "kickcollector", Env: append(env, "KICKMON_SOCKET="+socket)})
	if err != nil {
		return nil, err
	}
	if err := waitCollector(ctx, coll, socket, 30*time.Second); err != nil {
		return nil, fmt.Errorf("kickcollector (see %s): %w", filepath.Join(s.LogDir, "kickcollector.log"), err)
	}
	return coll, nil
}

// View runs kickview on socket in the foreground until it quits (its error)
// or ctx ends (nil).
func (s *Stack) View(ctx context.Context, socket string, stdin io.Reader, stdout, stderr io.Writer) error {
	view, err := s.Start(proc.Spec{Name: "kickview",
		Args: []string{"--socket", socket, "--log-file", filepath.Join(s.LogDir, "kickview.log")},
		Process: func(c *exec.Cmd) {
			c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
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

// Pids are the children's process ids, in order of start.
func (s *Stack) Pids() []int {
	var pids []int
	for _, p := range s.procs {
		pids = append(pids, p.Pid())
	}
	return pids
}

// Stop stops the children, last started first, each with grace before it
// is killed; the first failure is returned.
func (s *Stack) Stop(grace time.Duration) error {
	var first error
	for i := len(s.procs) - 1; i >= 0; i-- {
		if err := s.procs[i].Stop(grace); err != nil && first == nil {
			first = err
		}
	}
	s.procs = nil
	return first
}

// EnsureDatabase creates database name through adminURL unless it exists.
func EnsureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to postgresql: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT exists(SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
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
