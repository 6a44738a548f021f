//go:build systemd

package systemdtest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickmon/kickmon/deploy/internal/nspawn"
	"github.com/kickmon/kickmon/deploy/internal/proc"
)

// maxExposure is the highest `systemd-analyze security` score either unit may have.
const maxExposure = 1.5

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestPackageUnderSystemd installs the .deb named by KICKMON_DEB in a booted
// Debian 12 container, runs both units against PostgreSQL and a kicksim on
// the host's loopback, kicknotify against a webhook sink on that loopback,
// and purges the package at the end.
func TestPackageUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a Debian container (minutes): not in -short")
	}
	deb := os.Getenv("KICKMON_DEB")
	if deb == "" {
		t.Fatal("KICKMON_DEB is not set: run `make systemd-test`, which builds the package and names it")
	}
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("KICKMON_DEB: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("systemd-nspawn needs root: run `make systemd-test` as root")
	}
	if err := nspawn.CheckTools(); err != nil {
		t.Fatal(err)
	}
	kicksim := filepath.Join(filepath.Dir(deb), "kicksim")
	if _, err := os.Stat(kicksim); err != nil {
		t.Fatalf("kicksim next to the package: %v (make build)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	cache := os.Getenv("KICKMON_ROOTFS_CACHE")
	if cache == "" {
		cache = "/var/cache/kickmon-systemd-test"
	}
	step("rootfs (cached in " + cache + ", else mmdebstrap: a few minutes)")
	root, err := nspawn.Rootfs(ctx, cache, []string{"postgresql", "procps"})
	if err != nil {
		t.Fatal(err)
	}

	// Kick: kicksim on the host's loopback, which the container shares.
	dir := t.TempDir()
	simOut, simW := io.Pipe()
	sim, err := proc.Start(proc.Spec{Name: "kicksim", Path: kicksim, LogDir: dir, Stdout: simW,
		Args: []string{"--streamers", "4", "--live-fraction", "0.5", "--listen", "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop(10 * time.Second) })
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	simEnv, err := proc.ReadEnv(rctx, simOut, func(k string) bool { return k == "KICKMON_STREAMERS" })
	rcancel()
	if err != nil {
		t.Fatalf("kicksim environment: %v", err)
	}
	env := map[string]string{}
	for _, kv := range simEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	slugs := strings.Split(env["KICKMON_STREAMERS"], ",")
	if len(slugs) < 4 {
		t.Fatalf("kicksim named %d streamers, want 4: %q", len(slugs), env["KICKMON_STREAMERS"])
	}

	step("boot")
	m, err := nspawn.Boot(ctx, nspawn.Options{Root: root, Console: filepath.Join(dir, "console.log"),
		BindRO: []string{filepath.Dir(deb) + ":/mnt/kickmon"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := m.Exec(context.Background(), "journalctl", "--no-pager", "-n", "150", "-u", "kickmon-collector", "-u", "kickmon-writer", "-u", "kickmon-notify", "-u", "postgresql@15-main")
			t.Logf("journal:\n%s", out)
		}
	})
	if err := m.WaitBooted(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := m.Exec(ctx, args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	show := func(unit, prop string) string {
		t.Helper()
		return strings.TrimSpace(run("systemctl", "show", "--value", "-p", prop, unit))
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	psql := func(sql string) string {
		t.Helper()
		out, err := m.ExecAs(ctx, "postgres", "psql", "-d", "kickmon", "-XAtc", sql)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}

	step("install")
	run("sh", "-c", "dpkg -i /mnt/kickmon/"+filepath.Base(deb))
	run("id", "kickmon")
	for _, u := range []string{"kickmon-collector", "kickmon-writer", "kickmon-notify"} {
		if got := show(u, "UnitFileState"); got != "disabled" {
			t.Errorf("%s after install: UnitFileState=%s, want disabled (install must not enable)", u, got)
		}
		if got := show(u, "ActiveState"); got != "inactive" {
			t.Errorf("%s after install: ActiveState=%s, want inactive (install must not start)", u, got)
		}
	}
	if got := strings.TrimSpace(run("stat", "-c", "%a %U %G", "/etc/kickmon/kickmon.env", "/etc/kickmon/credentials")); got != "640 root kickmon\n700 root root" {
		t.Errorf("modes of the env file and the credentials directory:\n%s\nwant 640 root kickmon / 700 root root", got)
	}

	step("systemd-analyze verify and security")
	for _, u := range []string{"kickmon-collector.service", "kickmon-writer.service", "kickmon-notify.service"} {
		if out := run("systemd-analyze", "verify", "--man=no", u); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", u, out)
		}
		out := run("systemd-analyze", "security", "--no-pager", u)
		mm := exposureRE.FindStringSubmatch(out)
		if mm == nil {
			t.Fatalf("no exposure level in systemd-analyze security %s:\n%s", u, out)
		}
		if score, _ := strconv.ParseFloat(mm[1], 64); score > maxExposure {
			t.Errorf("%s: exposure %s, above %.1f", u, mm[1], maxExposure)
		}
		t.Logf("%s: exposure %s", u, mm[1])
	}

	step("configure: database, env file, credentials")
	run("runuser", "-u", "postgres", "--", "createuser", "kickmon")
	run("runuser", "-u", "postgres", "--", "createdb", "-O", "kickmon", "kickmon")
	// kicksim's URLs (and what else it says the collector needs) go to the env file; its
	// client id and secret become credentials.
	envFile := fmt.Sprintf("KICKMON_STREAMERS=%s\nKICKMON_POLL_INTERVAL=2s\nKICKMON_API_BUDGET=6000\n", strings.Join(slugs[:3], ","))
	for _, kv := range simEnv {
		k, v, _ := strings.Cut(kv, "=")
		if k != "KICKMON_STREAMERS" && k != "KICK_CLIENT_ID" && k != "KICK_CLIENT_SECRET" && !strings.HasPrefix(k, "KICKSIM_") {
			envFile += k + "='" + v + "'\n"
		}
	}
	for path, data := range map[string]string{
		"/etc/kickmon/kickmon.env":                    envFile,
		"/etc/kickmon/credentials/kick-client-id":     env["KICK_CLIENT_ID"],
		"/etc/kickmon/credentials/kick-client-secret": env["KICK_CLIENT_SECRET"],
		"/etc/kickmon/credentials/database-url":       "postgres:///kickmon?host=/run/postgresql",
	} {
		if err := m.WriteFile(ctx, path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run("chmod", "0640", "/etc/kickmon/kickmon.env")
	run("chgrp", "kickmon", "/etc/kickmon/kickmon.env")
	// A short watchdog keeps the frozen-collector check quick; everything else is the shipped unit.
	run("mkdir", "-p", "/run/systemd/system/kickmon-collector.service.d")
	if err := m.WriteFile(ctx, "/run/systemd/system/kickmon-collector.service.d/watchdog.conf", []byte("[Service]\nWatchdogSec=6s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("systemctl", "daemon-reload")

	step("start the collector: READY only when serving")
	run("systemctl", "start", "kickmon-collector")
	// systemctl start returned, so READY=1 came: the socket must answer now, with no retry.
	run("kickctl", "status")
	if st := show("kickmon-collector", "StatusText"); st == "" {
		t.Error("kickmon-collector: no STATUS= text")
	} else {
		t.Logf("collector status: %s", st)
	}

	step("start the writer")
	run("systemctl", "start", "kickmon-writer")
	if got := psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'kickmon'"); got == "0" {
		t.Error("writer READY before its schema exists")
	}
	waitFor("the three streamers in kickmon.streamers", func() bool {
		return psql("SELECT count(*) FROM kickmon.streamers WHERE removed_at IS NULL") == "3"
	})
	if out := run("systemctl", "status", "--no-pager", "kickmon-collector", "kickmon-writer"); strings.Count(out, "Status: \"") != 2 {
		t.Errorf("systemctl status shows no Status: line for both units:\n%s", out)
	}
	run("test", "-s", "/var/lib/kickmon/spool.db")

	step("socket access: a kickmon member may change, others may not even connect")
	run("useradd", "-m", "-G", "kickmon", "alice")
	run("useradd", "-m", "bob")
	if out, err := m.ExecAs(ctx, "alice", "kickctl", "streamers", "add", slugs[3]); err != nil {
		t.Errorf("kickctl streamers add as a kickmon member: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"streamers", "add", slugs[3]}, {"streamers", "list"}} {
		out, err := m.ExecAs(ctx, "bob", "kickctl", args...)
		if err == nil {
			t.Errorf("kickctl %s as a non-member succeeded:\n%s", strings.Join(args, " "), out)
		} else if !strings.Contains(strings.ToLower(out), "permission denied") {
			t.Errorf("kickctl %s as a non-member: want a permission error, got:\n%s", strings.Join(args, " "), out)
		}
	}
	waitFor("the added streamer in kickmon.streamers", func() bool {
		return psql("SELECT count(*) FROM kickmon.streamers WHERE removed_at IS NULL") == "4"
	})
	// The limits are in force as systemd read them (the container's cgroup has no memory
	// controller delegated, so usage itself is not accounted here).
	for _, lim := range []struct{ unit, prop, want string }{
		{"kickmon-collector", "MemoryMax", "1073741824"}, {"kickmon-collector", "TasksMax", "256"},
		{"kickmon-writer", "MemoryMax", "536870912"}, {"kickmon-writer", "TasksMax", "256"},
	} {
		if got := show(lim.unit, lim.prop); got != lim.want {
			t.Errorf("%s: %s=%s, want %s", lim.unit, lim.prop, got, lim.want)
		}
	}

	step("kicknotify: a go-live reaches a signed webhook on the host's loopback")
	sink := startHookSink(t)
	notifyYAML := fmt.Sprintf("targets:\n  - name: hook\n    type: webhook\n    url: %s/kickmon\n    secret_file: hook-secret\n    events: [live]\n", sink.URL)
	// The secret as the unit's comment says: a credential loaded by a drop-in.
	for path, data := range map[string]string{
		"/etc/kickmon/notify.yaml":                               notifyYAML,
		"/etc/kickmon/credentials/hook-secret":                   string(sink.secret),
		"/run/systemd/system/kickmon-notify.service.d/hook.conf": "[Service]\nLoadCredential=hook-secret:/etc/kickmon/credentials/hook-secret\n",
	} {
		run("mkdir", "-p", filepath.Dir(path))
		if err := m.WriteFile(ctx, path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run("chmod", "0640", "/etc/kickmon/notify.yaml")
	run("chgrp", "kickmon", "/etc/kickmon/notify.yaml")
	run("chmod", "0644", "/run/systemd/system/kickmon-notify.service.d/hook.conf")
	run("systemctl", "daemon-reload")
	run("systemctl", "start", "kickmon-notify")
	// systemctl start returned, so READY=1 came: its socket must answer now.
	if got := strings.TrimSpace(run("systemctl", "is-active", "kickmon-notify")); got != "active" {
		t.Errorf("kickmon-notify after start: %s", got)
	}
	run("kickctl", "notify", "status")
	if st := show("kickmon-notify", "StatusText"); st == "" {
		t.Error("kickmon-notify: no STATUS= text")
	} else {
		t.Logf("notify status: %s", st)
	}
	// doctor's notifier check sees it through the packaged default socket.
	out, _ := m.Exec(ctx, "kickctl", "doctor", "-o", "json") // other checks may fail in a container: judge the notifier's
	var rep struct {
		Checks []struct{ Name, State, Summary string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kickctl doctor -o json: %v\n%s", err, out)
	}
	notifier := false
	for _, c := range rep.Checks {
		if c.Name == "notifier" {
			notifier = true
			if c.State != "ok" {
				t.Errorf("doctor's notifier check: %s: %s", c.State, c.Summary)
			}
		}
	}
	if !notifier {
		t.Errorf("kickctl doctor has no notifier check:\n%s", out)
	}
	// An offline watched streamer goes live in kicksim.
	var sims []struct {
		UserID int64  `json:"user_id"`
		Slug   string `json:"slug"`
		Live   bool   `json:"live"`
	}
	if err := json.Unmarshal(simControl(t, env["KICKSIM_CONTROL_URL"], "GET", "/streamers"), &sims); err != nil {
		t.Fatalf("kicksim streamers: %v", err)
	}
	goLive := ""
	for _, x := range sims {
		if !x.Live && slices.Contains(slugs[:4], x.Slug) {
			goLive = x.Slug
			simControl(t, env["KICKSIM_CONTROL_URL"], "POST", fmt.Sprintf("/streamers/%d/live", x.UserID))
			break
		}
	}
	if goLive == "" {
		t.Fatalf("no offline streamer among %q in kicksim to send live", slugs[:4])
	}
	waitFor("the go-live of "+goLive+" at the webhook sink", func() bool { return sink.delivered("live", goLive) })
	if n := sink.badSignatures(); n > 0 {
		t.Errorf("%d deliveries with a bad X-Kickmon-Signature", n)
	}

	step("watchdog: a frozen collector is restarted")
	before := show("kickmon-collector", "MainPID")
	run("systemctl", "kill", "--kill-who=main", "--signal=SIGSTOP", "kickmon-collector")
	waitFor("the watchdog to restart the collector", func() bool {
		return show("kickmon-collector", "NRestarts") != "0" && show("kickmon-collector", "ActiveState") == "active" &&
			show("kickmon-collector", "MainPID") != before
	})
	if out := run("journalctl", "--no-pager", "-u", "kickmon-collector"); !strings.Contains(out, "Watchdog timeout") {
		t.Errorf("collector restarted, but not by the watchdog:\n%s", out)
	}
	run("kickctl", "status")

	step("the writer comes back after PostgreSQL restarts")
	run("systemctl", "restart", "postgresql")
	run("kickctl", "streamers", "remove", slugs[0])
	waitFor("the removal written after PostgreSQL's restart", func() bool {
		out, err := m.ExecAs(ctx, "postgres", "psql", "-d", "kickmon", "-XAtc", "SELECT count(*) FROM kickmon.streamers WHERE removed_at IS NULL")
		return err == nil && strings.TrimSpace(out) == "3"
	})
	if got := show("kickmon-writer", "ActiveState"); got != "active" {
		t.Errorf("writer after PostgreSQL's restart: %s", got)
	}

	step("remove keeps configuration and state; purge removes them")
	run("dpkg", "-r", "kickmon")
	run("test", "-s", "/var/lib/kickmon/spool.db")
	run("test", "-f", "/etc/kickmon/kickmon.env")
	run("test", "-f", "/etc/kickmon/notify.yaml")
	for _, u := range []string{"kickmon-collector", "kickmon-writer", "kickmon-notify"} {
		if got := show(u, "ActiveState"); got != "inactive" {
			t.Errorf("%s after remove: ActiveState=%s, want inactive (its binary is gone)", u, got)
		}
	}
	if got := show("kickmon-collector", "LoadState"); got != "not-found" {
		t.Errorf("collector unit after remove: LoadState=%s, want not-found", got)
	}
	run("dpkg", "--purge", "kickmon")
	for _, p := range []string{"/var/lib/kickmon", "/etc/kickmon", "/usr/bin/kickcollector", "/usr/lib/systemd/system/kickmon-writer.service"} {
		if out, err := m.Exec(ctx, "test", "!", "-e", p); err != nil {
			t.Errorf("%s still there after purge: %s", p, out)
		}
	}
	if out, err := m.Exec(ctx, "dpkg", "-s", "kickmon"); err == nil {
		t.Errorf("dpkg -s kickmon after purge:\n%s", out)
	}
	step("done")
}

// hookSink is kicknotify's webhook target on the host's loopback (which the
// container shares): it answers 204 to deliveries signed with secret and
// keeps their kind and slug, and counts the badly signed ones (401).
type hookSink struct {
	*httptest.Server
	secret []byte

	mu  sync.Mutex
	got []string // "kind slug"
	bad int
}

func startHookSink(t *testing.T) *hookSink {
	t.Helper()
	s := &hookSink{secret: []byte(rand.Text())}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mac := hmac.New(sha256.New, s.secret)
		mac.Write(body)
		var ev struct {
			Streamer struct{ Slug string } `json:"streamer"`
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !hmac.Equal([]byte(r.Header.Get("X-Kickmon-Signature")), []byte(hex.EncodeToString(mac.Sum(nil)))) {
			s.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.got = append(s.got, r.Header.Get("X-Kickmon-Kind")+" "+ev.Streamer.Slug)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

// delivered says whether a signed delivery of kind about slug arrived.
func (s *hookSink) delivered(kind, slug string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.got, kind+" "+slug)
}

func (s *hookSink) badSignatures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

// simControl calls kicksim's control API (KICKSIM_CONTROL_URL) and returns the body.
func simControl(t *testing.T, base, method, path string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("kicksim %s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("kicksim %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}
