package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/proto/kickapitest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// result is what one kickctl run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// String is the golden form of a run; the socket path is replaced by $SOCKET.
func (r result) golden(socket string, args []string) string {
	s := fmt.Sprintf("$ kickctl %s\n%s--- stderr\n%s--- exit %d\n", strings.Join(args, " "), r.stdout, r.stderr, r.code)
	return strings.ReplaceAll(s, socket, "$SOCKET")
}

// testEnv is an env with fixed time, zone and version, on socket.
func testEnv(socket string, stdout, stderr *syncBuffer) *env {
	return &env{
		stdout: stdout, stderr: stderr, socket: socket,
		now: func() time.Time { return testNow }, loc: time.UTC,
		timeout: 10 * time.Second, version: "v0.0.0-test",
		isTerminal: func(io.Writer) bool { return false },
	}
}

// run runs kickctl against socket and returns what it printed.
func run(t *testing.T, ctx context.Context, socket string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := testEnv(socket, &stdout, &stderr).run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// checkGolden compares got with testdata/name.golden (or rewrites it with -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a fake collector with alice, bob and carol watched, dave
// resolvable and the test status set.
func fixture(t *testing.T) *kickapitest.Server {
	srv := kickapitest.NewServer(t)
	srv.SetStreamers(alice(), bob(), carol())
	srv.SetResolvable(alice(), bob(), carol(), dave())
	srv.SetStatus(testStatus())
	return srv
}

// addedAt scrubs the time AddStreamers stamps on new streamers.
var addedAt = regexp.MustCompile(`"added_at": "[^"]*"`)

func TestGolden(t *testing.T) {
	withEvents := func(srv *kickapitest.Server) { srv.Publish(testEvents()...) }
	deny := func(srv *kickapitest.Server) { srv.DenyMutations(true) }
	tests := []struct {
		name  string
		args  []string
		setup func(*kickapitest.Server)
		code  int
	}{
		{name: "streamers_list", args: []string{"streamers", "list"}},
		{name: "streamers_list_json", args: []string{"streamers", "list", "-o", "json"}},
		{name: "streamers_list_empty", args: []string{"streamers", "list"}, setup: func(s *kickapitest.Server) { s.SetStreamers() }},
		{name: "streamers_list_empty_json", args: []string{"streamers", "list", "--output=json"}, setup: func(s *kickapitest.Server) { s.SetStreamers() }},
		{name: "streamers_show_live", args: []string{"streamers", "show", "alice"}},
		{name: "streamers_show_offline", args: []string{"streamers", "show", "bob"}},
		{name: "streamers_show_unknown", args: []string{"streamers", "show", "carol"}},
		{name: "streamers_show_json", args: []string{"streamers", "show", "-o", "json", "alice"}},
		{name: "streamers_show_not_watched", args: []string{"streamers", "show", "zed"}, code: ExitError},
		{name: "streamers_add", args: []string{"streamers", "add", "dave", "alice"}},
		{name: "streamers_add_channel_id", args: []string{"streamers", "add", "dave", "--channel-id", "204"}},
		{name: "streamers_add_unknown", args: []string{"streamers", "add", "dave", "nosuch", "alice", "nope"}, code: ExitError},
		{name: "streamers_add_json", args: []string{"streamers", "add", "-o", "json", "dave", "nosuch"}, code: ExitError},
		{name: "streamers_add_denied", args: []string{"streamers", "add", "dave"}, setup: deny, code: ExitError},
		{name: "streamers_remove", args: []string{"streamers", "remove", "bob", "carol"}},
		{name: "streamers_remove_not_watched", args: []string{"streamers", "remove", "bob", "zed"}, code: ExitError},
		{name: "streamers_remove_json", args: []string{"streamers", "remove", "bob", "-o", "json"}},
		{name: "streamers_remove_denied", args: []string{"streamers", "remove", "bob"}, setup: deny, code: ExitError},
		{name: "streamers_refresh_all", args: []string{"streamers", "refresh"}},
		{name: "streamers_refresh", args: []string{"streamers", "refresh", "alice", "zed"}, code: ExitError},
		{name: "streamers_refresh_json", args: []string{"streamers", "refresh", "alice", "-o", "json"}},
		{name: "streamers_refresh_denied", args: []string{"streamers", "refresh"}, setup: deny, code: ExitError},
		{name: "status", args: []string{"status"}, setup: withEvents},
		{name: "status_json", args: []string{"status", "-o", "json"}, setup: withEvents},
		{name: "events_tail", args: []string{"events", "tail"}, setup: withEvents},
		{name: "events_tail_n", args: []string{"events", "tail", "-n", "2"}, setup: withEvents},
		{name: "events_tail_from_json", args: []string{"events", "tail", "--from", "5", "-o", "json"}, setup: withEvents},
		{name: "events_tail_empty", args: []string{"events", "tail"}},
		{name: "events_tail_dropped", args: []string{"events", "tail", "--from", "1"},
			setup: func(s *kickapitest.Server) { withEvents(s); s.DropBefore(3) }, code: ExitError},
		{name: "version", args: []string{"version"}},
		{name: "version_json", args: []string{"version", "-o", "json"}},
		{name: "help", args: []string{"help"}},
		{name: "help_flag", args: []string{"--help"}},
		{name: "help_streamers", args: []string{"help", "streamers"}},
		{name: "help_unknown", args: []string{"help", "frob"}, code: ExitUsage},
		{name: "help_streamers_add", args: []string{"help", "streamers", "add"}},
		{name: "streamers_add_help_flag", args: []string{"streamers", "add", "-h"}},
		{name: "usage_no_command", args: nil, code: ExitUsage},
		{name: "usage_unknown_command", args: []string{"frobnicate"}, code: ExitUsage},
		{name: "usage_noun_only", args: []string{"streamers"}, code: ExitUsage},
		{name: "usage_unknown_verb", args: []string{"streamers", "frob"}, code: ExitUsage},
		{name: "usage_bad_flag", args: []string{"streamers", "list", "--bogus"}, code: ExitUsage},
		{name: "usage_bad_output", args: []string{"status", "-o", "yaml"}, code: ExitUsage},
		{name: "usage_add_no_slug", args: []string{"streamers", "add"}, code: ExitUsage},
		{name: "usage_channel_id_two_slugs", args: []string{"streamers", "add", "--channel-id", "5", "a", "b"}, code: ExitUsage},
		{name: "usage_list_argument", args: []string{"streamers", "list", "alice"}, code: ExitUsage},
		{name: "usage_negative_channel_id", args: []string{"streamers", "add", "dave", "--channel-id", "-4"}, code: ExitUsage},
		{name: "usage_top_level_bad_flag", args: []string{"--bogus", "status"}, code: ExitUsage},
		{name: "usage_show_two_slugs", args: []string{"streamers", "show", "a", "b"}, code: ExitUsage},
		{name: "usage_completion_shell", args: []string{"completion", "tcsh"}, code: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fixture(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			r := run(t, t.Context(), srv.Path(), tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			checkGolden(t, tt.name, addedAt.ReplaceAllString(r.golden(srv.Path(), tt.args), `"added_at": "<scrubbed>"`))
		})
	}
}
