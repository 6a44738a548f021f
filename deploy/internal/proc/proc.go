// Package proc starts and stops the kickmon binaries as child processes for
// the demo and the end-to-end tests: logs to files, death with the parent,
// and a stop that escalates from SIGTERM to SIGKILL.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a running child.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// Spec describes a child to start.
type Spec struct {
	Name    string   // for messages and the log file name
	Path    string   // binary
	Args    []string // arguments
	Env     []string // added to the parent's environment
	LogDir  string   // stderr (and stdout unless Stdout is set) go to LogDir/Name.log
	Stdout  io.Writer
	Process func(*exec.Cmd) // last-minute changes (tests)
}

// Start starts the child. It receives SIGTERM if this process dies.
func Start(s Spec) (*Process, error) {
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p := &Process{Name: s.Name, cmd: cmd, done: make(chan struct{})}
	if s.LogDir != "" {
		f, err := os.Create(filepath.Join(s.LogDir, s.Name+".log"))
		if err != nil {
			return nil, fmt.Errorf("%s log: %w", s.Name, err)
		}
		p.log = f
		cmd.Stderr = f
		cmd.Stdout = f
	}
	if s.Stdout != nil {
		cmd.Stdout = s.Stdout
	}
	if s.Process != nil {
		s.Process(cmd)
	}
	if err := cmd.Start(); err != nil {
		if p.log != nil {
			_ = p.log.Close()
		}
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		if p.log != nil {
			_ = p.log.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the child's exit error, valid after Done.
func (p *Process) Err() error { return p.err }

// Signal sends sig to the child.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, waits up to grace, then kills. It returns the exit
// error unless the child exited cleanly or was stopped by the signal.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", p.Name, grace)
	}
}

func (p *Process) exitErr() error {
	var ee *exec.ExitError
	if p.err == nil || (errors.As(p.err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled()) {
		return nil
	}
	return fmt.Errorf("%s: %w", p.Name, p.err)
}

// Kill kills the child at once (as kill -9 would) and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// ReadEnv reads KEY=VALUE lines from r until a line satisfies last (or
// r ends), skipping comments.
func ReadEnv(ctx context.Context, r io.Reader, last func(key string) bool) ([]string, error) {
	type result struct {
		env []string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var env []string
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			env = append(env, k+"="+unquote(v))
			if last(k) {
				ch <- result{env: env}
				return
			}
		}
		ch <- result{env: env, err: fmt.Errorf("output ended before the expected lines: %v", sc.Err())}
	}()
	select {
	case r := <-ch:
		return r.env, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Alive reports whether a process with pid exists (and is not a zombie we reaped).
func Alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// unquote undoes a shell's single quoting ('it'\”s' → it's).
func unquote(v string) string {
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
		return v
	}
	return strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
}
