package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kickmon/kickmon/deploy/internal/proc"
)

// A watch list exported from one collector and imported into a fresh one
// (same Kick, here kicksim) gives the same streamers with the same channel
// ids; importing it again changes nothing.
func TestStreamersExportImportBetweenCollectors(t *testing.T) {
	s := startSystem(t, 6, "KICKMON_STREAMERS=")
	st := s.streamers()
	for _, x := range st[:2] {
		if out, err := s.ctl("streamers", "add", x.Slug, "--channel-id", fmt.Sprint(x.ChannelID)); err != nil {
			t.Fatalf("kickctl add %s: %v\n%s", x.Slug, err, out)
		}
	}
	if out, err := s.ctl("streamers", "add", st[2].Slug, st[3].Slug); err != nil {
		t.Fatalf("kickctl add: %v\n%s", err, out)
	}

	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			exported := ctlStdout(t, s.socket, "streamers", "export", "-o", format)
			for _, x := range st[:4] {
				if !strings.Contains(exported, x.Slug) {
					t.Fatalf("export lacks %s:\n%s", x.Slug, exported)
				}
			}
			file := filepath.Join(s.dir, "watch-list."+format)
			if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
				t.Fatal(err)
			}

			// A fresh collector on the same kicksim: its own socket and state.
			fresh := filepath.Join(s.dir, "fresh-"+format+".sock")
			env := append(append([]string{}, s.collEnv...),
				"KICKMON_SOCKET="+fresh, "KICKMON_STATE_DIR="+filepath.Join(s.dir, "fresh-"+format))
			s.start(proc.Spec{Name: "kickcollector-fresh-" + format, Path: filepath.Join(bin, "kickcollector"), Env: env})
			waitFor(t, 30*time.Second, "the fresh collector serving", func() bool {
				return exec.Command(filepath.Join(bin, "kickctl"), "--socket", fresh, "status").Run() == nil
			})

			imported := ctlStdout(t, fresh, "streamers", "import", file)
			if n := linesWithPrefix(imported, "added "); n != 4 {
				t.Errorf("import added %d streamers, want 4:\n%s", n, imported)
			}
			if got := ctlStdout(t, fresh, "streamers", "export", "-o", format); got != exported {
				t.Errorf("the fresh collector's watch list differs:\n--- exported\n%s--- after import\n%s", exported, got)
			}
			for _, x := range st[:2] {
				if !strings.Contains(exported, fmt.Sprint(x.ChannelID)) {
					t.Errorf("channel id %d of %s not carried:\n%s", x.ChannelID, x.Slug, exported)
				}
			}

			again := ctlStdout(t, fresh, "streamers", "import", file)
			if !strings.HasSuffix(again, "4 streamers: 0 added, 4 already watched, 0 failed\n") {
				t.Errorf("a second import changed something:\n%s", again)
			}
		})
	}
}

// ctlStdout runs kickctl against socket and returns its stdout; it fails the
// test on an error or anything on stderr (import's progress line included:
// stderr here is not a terminal).
func ctlStdout(t *testing.T, socket string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kickctl"), append([]string{"--socket", socket}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("kickctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// linesWithPrefix counts the lines of s that start with prefix.
func linesWithPrefix(s, prefix string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// kickctl doctor against the real daemons: healthy where this system can be
// (socket, access, collector, token, poller, writer, spool, clock), then a failed socket
// check and exit 1 once the collector is gone.
func TestDoctorAgainstRealDaemons(t *testing.T) {
	s := startSystem(t, 3)
	type report struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name, State, Summary, Fix string
		} `json:"checks"`
	}
	doctor := func() (report, int) {
		cmd := exec.Command(filepath.Join(bin, "kickctl"), "--socket", s.socket, "doctor", "-o", "json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var r report
		if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil {
			t.Fatalf("doctor -o json: %v (exit %v)\n%s%s", jerr, err, stdout.String(), stderr.String())
		}
		return r, cmd.ProcessState.ExitCode()
	}
	states := func(r report) map[string]string {
		m := map[string]string{}
		for _, c := range r.Checks {
			m[c.Name] = c.State
		}
		return m
	}
	var last report
	waitFor(t, 30*time.Second, "doctor to find the daemons healthy", func() bool {
		last, _ = doctor()
		st := states(last)
		for _, name := range []string{"socket", "access", "collector", "token", "poller", "writer", "spool", "clock"} {
			if st[name] != "ok" {
				return false
			}
		}
		return true
	})
	table, _ := s.ctl("doctor")
	t.Logf("kickctl doctor on the healthy system:\n%s", table)
	if r, code := doctor(); r.OK != (code == 0) {
		t.Errorf("ok=%v but exit %d: %+v", r.OK, code, r)
	}

	if err := s.coll.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop collector: %v", err)
	}
	r, code := doctor()
	if code != 1 || r.OK || len(r.Checks) != 1 || r.Checks[0].Name != "socket" || r.Checks[0].State != "fail" || r.Checks[0].Fix == "" {
		t.Errorf("doctor with the collector stopped: exit %d, %+v", code, r)
	}
}
