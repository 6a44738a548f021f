package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChannelIDFlagBeforeOrAfterSlug(t *testing.T) {
	for _, args := range [][]string{
		{"streamers", "add", "dave", "--channel-id", "204"},
		{"streamers", "add", "--channel-id", "204", "dave"},
		{"streamers", "add", "--channel-id=204", "dave", "-o", "table"},
		{"--socket", "$SOCKET", "streamers", "add", "dave", "--channel-id", "204"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			srv := fixture(t)
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "$SOCKET", srv.Path())
			}
			// The env's own socket is wrong unless --socket overrides it or it is srv's.
			socket := srv.Path()
			if args[0] == "--socket" {
				socket = filepath.Join(t.TempDir(), "wrong.sock")
			}
			r := run(t, t.Context(), socket, args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			resp, err := srv.Dial(t).GetStreamer(t.Context(), &kickmonv1.GetStreamerRequest{Key: &kickmonv1.GetStreamerRequest_Slug{Slug: "dave"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetStreamer().GetChannelId(); got != 204 {
				t.Errorf("channel id %d, want 204", got)
			}
		})
	}
}

func TestRefreshAsksTheCollector(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{args: []string{"streamers", "refresh"}, want: []string{"alice", "bob", "carol"}},
		{args: []string{"streamers", "refresh", "bob", "alice"}, want: []string{"bob", "alice"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			srv := fixture(t)
			if r := run(t, t.Context(), srv.Path(), tt.args...); r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if diff := cmp.Diff(tt.want, srv.Refreshed()); diff != "" {
				t.Errorf("refreshed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSocketFromEnvironment(t *testing.T) {
	srv := fixture(t)
	var stdout, stderr syncBuffer
	getenv := func(k string) string {
		if k == "KICKMON_SOCKET" {
			return srv.Path()
		}
		return ""
	}
	code := Run(t.Context(), []string{"status", "-o", "json"}, getenv, &stdout, &stderr)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"version": "v1.0.0"`) {
		t.Errorf("status did not come from the fake collector:\n%s", stdout.String())
	}
}

func TestUnreachableCollector(t *testing.T) {
	stale := staleSocket(t)
	notSocket := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, socket, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "none.sock"), "no such file"},
		{"stale", stale, "connection refused (stale socket)"},
		{"not a socket", notSocket, "not a socket"},
	}
	commands := [][]string{
		{"streamers", "list"}, {"streamers", "show", "alice"}, {"streamers", "add", "dave"},
		{"streamers", "remove", "bob"}, {"streamers", "refresh"}, {"status"}, {"events", "tail"}, {"version"},
	}
	for _, tt := range tests {
		for _, args := range commands {
			t.Run(tt.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				r := run(t, t.Context(), tt.socket, args...)
				if r.code != ExitError {
					t.Errorf("exit %d, want %d", r.code, ExitError)
				}
				want := "kickctl: cannot reach kickcollector at " + tt.socket + ": " + tt.want + " (is it running? systemctl status kickmon-collector)\n"
				if r.stderr != want {
					t.Errorf("stderr:\n%q\nwant\n%q", r.stderr, want)
				}
			})
		}
	}
}

func TestPermissionDeniedNamesTheGroup(t *testing.T) {
	for _, args := range [][]string{
		{"streamers", "add", "dave"}, {"streamers", "remove", "bob"}, {"streamers", "refresh", "alice"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			srv := fixture(t)
			srv.DenyMutations(true)
			r := run(t, t.Context(), srv.Path(), args...)
			if r.code != ExitError {
				t.Errorf("exit %d, want %d", r.code, ExitError)
			}
			if !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "admin group, KICKMON_ADMIN_GROUP") {
				t.Errorf("stderr does not explain the group: %q", r.stderr)
			}
			if n := strings.Count(r.stderr, "\n"); n != 1 {
				t.Errorf("error printed on %d lines, want once: %q", n, r.stderr)
			}
		})
	}
}

// follow runs "kickctl events tail --follow args..." until the returned stop
// is called; stop returns what it printed.
func follow(t *testing.T, socket string, args ...string) (stdout *syncBuffer, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- testEnv(socket, &out, &errs).run(ctx, append([]string{"events", "tail", "--follow"}, args...))
	}()
	t.Cleanup(cancel)
	return &out, func() result {
		cancel()
		select {
		case code := <-done:
			return result{code: code, stdout: out.String(), stderr: errs.String()}
		case <-time.After(10 * time.Second):
			t.Fatal("events tail --follow did not stop when its context was cancelled")
			return result{}
		}
	}
}

func TestEventsTailFollow(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		before int // events published before following
		want   []uint64
	}{
		{name: "new events only", args: []string{"-n", "0"}, before: 3, want: []uint64{4, 5, 6, 7}},
		{name: "last one then new", args: []string{"-n", "1"}, before: 3, want: []uint64{3, 4, 5, 6, 7}},
		{name: "from seq", args: []string{"--from", "2", "-o", "json"}, before: 3, want: []uint64{2, 3, 4, 5, 6, 7}},
		{name: "empty spool", before: 0, want: []uint64{1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fixture(t)
			evs := testEvents()
			srv.Publish(evs[:tt.before]...)
			out, stop := follow(t, srv.Path(), tt.args...)
			waitFor(t, "the follower to subscribe", func() bool {
				st, err := srv.Dial(t).GetStatus(t.Context(), &kickmonv1.GetStatusRequest{})
				return err == nil && st.GetStatus().GetWatchers() == 1
			})
			for _, e := range evs[tt.before:] {
				srv.Publish(e)
			}
			waitFor(t, "seq 7 to be printed", func() bool { return strings.Contains(out.String(), "STREAMER_REMOVED") })
			r := stop()
			if r.code != ExitOK || r.stderr != "" {
				t.Errorf("exit %d, stderr %q; want a clean exit on cancel", r.code, r.stderr)
			}
			if diff := cmp.Diff(tt.want, printedSeqs(t, r.stdout)); diff != "" {
				t.Errorf("printed seqs (-want +got):\n%s\n%s", diff, r.stdout)
			}
		})
	}
}

func TestEventsTailFollowSurvivesCollectorRestart(t *testing.T) {
	srv := fixture(t)
	evs := testEvents()
	srv.Publish(evs[:2]...)
	out, stop := follow(t, srv.Path(), "--from", "1")
	waitFor(t, "seq 2 to be printed", func() bool { return strings.Contains(out.String(), "STREAM_STARTED") })
	srv.Stop()
	srv.Publish(evs[2:]...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "seq 7 to be printed", func() bool { return strings.Contains(out.String(), "STREAMER_REMOVED") })
	r := stop()
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5, 6, 7}, printedSeqs(t, r.stdout)); diff != "" {
		t.Errorf("printed seqs (-want +got):\n%s\n%s", diff, r.stdout)
	}
	if !strings.Contains(r.stderr, "resuming from seq 3") {
		t.Errorf("stderr does not say where it resumed: %q", r.stderr)
	}
}

// printedSeqs reads the seq of every event line (table or JSON) in out.
func printedSeqs(t *testing.T, out string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || strings.HasPrefix(line, "SEQ") {
			continue
		}
		var ev kickmonv1.Event
		if strings.HasPrefix(line, "{") {
			if err := protojson.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			seqs = append(seqs, ev.GetSeq())
			continue
		}
		var seq uint64
		if _, err := fmt.Sscan(strings.Fields(line)[0], &seq); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			r := run(t, t.Context(), "/nonexistent", "completion", shell)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			// Every script asks kickctl itself for the words (cobra's __complete).
			if !strings.Contains(r.stdout, "kickctl") || !strings.Contains(r.stdout, "__complete") {
				t.Errorf("%s script does not call kickctl __complete:\n%.300s", shell, r.stdout)
			}
			bin := map[string]string{"powershell": "pwsh"}[shell]
			if bin == "" {
				bin = shell
			}
			if _, err := exec.LookPath(bin); err != nil {
				if shell == "bash" {
					t.Fatalf("bash is needed to check the bash script: %v", err)
				}
				return // zsh, fish and pwsh are optional on CI images
			}
			if shell == "powershell" {
				return // pwsh has no syntax-only mode
			}
			path := filepath.Join(t.TempDir(), "kickctl."+shell)
			if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			check := exec.Command(bin, "-n", path)
			if shell == "fish" {
				check = exec.Command(bin, "--no-execute", path)
			}
			if out, err := check.CombinedOutput(); err != nil {
				t.Errorf("%s rejects the script: %v\n%s", shell, err, out)
			}
		})
	}
}

// TestCompletes asks kickctl for completions the way every shell script does
// (kickctl __complete WORDS... PARTIAL), against a fake collector for slugs.
func TestCompletes(t *testing.T) {
	tests := []struct {
		words []string // typed words, the last one being completed
		want  string
	}{
		{[]string{""}, "streamers events notify status doctor version completion help"},
		{[]string{"notify", ""}, "status test"},
		{[]string{"st"}, "streamers status"},
		{[]string{"streamers", ""}, "list show add remove refresh export import"},
		{[]string{"--socket", "$SOCKET", "streamers", "re"}, "remove refresh"},
		{[]string{"events", "tail", "--f"}, "--follow --from"},
		{[]string{"status", "-o", ""}, "table json"},
		{[]string{"streamers", "add", "dave", "--c"}, "--channel-id"},
		{[]string{"completion", ""}, "bash zsh fish powershell"},
		{[]string{"streamers", "show", ""}, "alice bob carol"},
		{[]string{"streamers", "show", "alice", ""}, ""},
		{[]string{"streamers", "remove", "b"}, "bob"},
		{[]string{"help", "streamers", "l"}, "list"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			srv := fixture(t)
			words := slices.Clone(tt.words)
			for i, w := range words {
				words[i] = strings.ReplaceAll(w, "$SOCKET", srv.Path())
			}
			r := run(t, t.Context(), srv.Path(), append([]string{"__complete"}, words...)...)
			if r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				if strings.HasPrefix(line, ":") { // the directive ends the list
					break
				}
				name, _, _ := strings.Cut(line, "\t")
				got = append(got, name)
			}
			want := strings.Fields(tt.want)
			if diff := cmp.Diff(slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("completions (-want +got):\n%s\n%s", diff, r.stdout)
			}
		})
	}
}
