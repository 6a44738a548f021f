// Package nspawn boots a Debian rootfs under systemd-nspawn, with systemd as
// its PID 1, so that kickmon's package and units can be tried under a real
// systemd on a machine that has none running (CI containers): no machined,
// no host D-Bus. Commands run inside through nsenter. The rootfs is built
// once by mmdebstrap and cached, keyed by its package list; each boot sees
// it through a throwaway overlay (--volatile=overlay), so runs never change
// the cache.
package nspawn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tools are the host commands this package needs, with the Debian package
// providing each.
var Tools = map[string]string{
	"mmdebstrap":     "mmdebstrap",
	"systemd-nspawn": "systemd-container",
	"nsenter":        "util-linux",
}

// CheckTools reports every missing host command and how to install it.
func CheckTools() error {
	var missing []string
	pkgs := map[string]bool{}
	for cmd, pkg := range Tools {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, cmd)
			pkgs[pkg] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	var install []string
	for p := range pkgs {
		install = append(install, p)
	}
	sort.Strings(install)
	return fmt.Errorf("%s not found: apt-get install %s (the systemd test boots a Debian 12 container)",
		strings.Join(missing, ", "), strings.Join(install, " "))
}

// Rootfs returns a Debian bookworm rootfs with systemd and the given
// packages, building it under cacheDir with mmdebstrap unless a complete one
// for the same package list is there already.
func Rootfs(ctx context.Context, cacheDir string, packages []string) (string, error) {
	pkgs := append([]string{"systemd", "systemd-sysv", "dbus"}, packages...)
	sort.Strings(pkgs)
	sum := sha256.Sum256([]byte("bookworm minbase " + strings.Join(pkgs, ",")))
	dir := filepath.Join(cacheDir, "bookworm-"+hex.EncodeToString(sum[:6]))
	done := dir + ".complete"
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	// A half-built rootfs from an interrupted run is not trusted.
	_ = os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, "mmdebstrap", "--variant=minbase", "--include="+strings.Join(pkgs, ","), "bookworm", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("mmdebstrap: %w: %s", err, tail(out, 2000))
	}
	if err := os.WriteFile(done, []byte(strings.Join(pkgs, "\n")+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	return dir, nil
}

// Machine is a booted container.
type Machine struct {
	cmd    *exec.Cmd
	done   chan struct{}
	leader int // the container's PID 1, as the host sees it
	log    string
}

// Options configure Boot.
type Options struct {
	Root    string   // the rootfs (left unchanged: the boot writes to an overlay)
	BindRO  []string // host:container read-only bind mounts
	Console string   // file receiving the container's console
}

// Boot boots root with systemd and waits until the container's PID 1 exists.
// The container shares the host's network (loopback included).
func Boot(ctx context.Context, o Options) (*Machine, error) {
	args := []string{"--register=no", "--keep-unit", "--quiet", "--volatile=overlay", "-D", o.Root}
	for _, b := range o.BindRO {
		args = append(args, "--bind-ro="+b)
	}
	args = append(args, "--boot")
	cmd := exec.Command("systemd-nspawn", args...)
	log, err := os.Create(o.Console)
	if err != nil {
		return nil, fmt.Errorf("console log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// SIGKILL of nspawn leaves the container behind; SIGTERM powers it off.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("systemd-nspawn: %w", err)
	}
	m := &Machine{cmd: cmd, done: make(chan struct{}), log: o.Console}
	go func() { _ = cmd.Wait(); _ = log.Close(); close(m.done) }()
	for m.leader == 0 {
		if pid := childOf(cmd.Process.Pid); pid != 0 && strings.HasSuffix(readFile(fmt.Sprintf("/proc/%d/comm", pid)), "systemd") {
			m.leader = pid
			break
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("systemd-nspawn exited at boot: %s", tail([]byte(readFile(o.Console)), 2000))
		case <-ctx.Done():
			m.Close()
			return nil, fmt.Errorf("container did not start: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return m, nil
}

// WaitBooted waits until the container's systemd has finished booting
// (running, or degraded: a failed unit of the base system is not ours).
func (m *Machine) WaitBooted(ctx context.Context) error {
	var last string
	for {
		out, _ := m.Exec(ctx, "systemctl", "is-system-running")
		last = strings.TrimSpace(out)
		if last == "running" || last == "degraded" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container did not finish booting (last state %q): %w", last, ctx.Err())
		case <-m.done:
			return fmt.Errorf("container exited while booting: %s", tail([]byte(readFile(m.log)), 2000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Exec runs a command inside the container as root and returns its
// combined output.
func (m *Machine) Exec(ctx context.Context, name string, args ...string) (string, error) {
	return m.ExecAs(ctx, "", name, args...)
}

// ExecAs runs a command inside the container as user (root if empty).
func (m *Machine) ExecAs(ctx context.Context, user, name string, args ...string) (string, error) {
	argv := []string{"-t", strconv.Itoa(m.leader), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--",
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	if user != "" {
		argv = append(argv, "runuser", "-u", user, "--")
	}
	cmd := exec.CommandContext(ctx, "nsenter", append(argv, append([]string{name}, args...)...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(out.Bytes(), 4000))
	}
	return out.String(), err
}

// WriteFile writes a file inside the container (through the container's
// own root, so overlay and mounts apply) with mode.
func (m *Machine) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	p := filepath.Join(fmt.Sprintf("/proc/%d/root", m.leader), path)
	if err := os.WriteFile(p, data, mode); err != nil {
		return fmt.Errorf("write %s in the container: %w", path, err)
	}
	return os.Chmod(p, mode)
}

// Close powers the container off (SIGTERM to nspawn asks its systemd to
// shut down) and waits, killing it if the shutdown hangs.
func (m *Machine) Close() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// Console is the container's console output so far.
func (m *Machine) Console() string { return readFile(m.log) }

// childOf returns the first child of pid, or 0.
func childOf(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		for _, f := range strings.Fields(readFile(t)) {
			if n, err := strconv.Atoi(f); err == nil {
				return n
			}
		}
	}
	return 0
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
