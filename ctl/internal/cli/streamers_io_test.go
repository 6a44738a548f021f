package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapitest"
)

func TestStreamersExportImportGolden(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
	}{
		{name: "streamers_export", args: []string{"streamers", "export"}},
		{name: "streamers_export_csv", args: []string{"streamers", "export", "-o", "csv"}},
		{name: "streamers_import_plain", args: []string{"streamers", "import", "testdata/import/plain.txt"}, code: ExitError},
		{name: "streamers_import_csv", args: []string{"streamers", "import", "testdata/import/export.csv"}},
		{name: "streamers_import_list_json", args: []string{"streamers", "import", "testdata/import/list.json", "-o", "json"}},
		{name: "streamers_import_stdin", args: []string{"streamers", "import", "-"}, stdin: "dave\nbob\n"},
		{name: "streamers_import_bad", args: []string{"streamers", "import", "testdata/import/bad.txt"}, code: ExitError},
		{name: "streamers_import_conflict", args: []string{"streamers", "import", "testdata/import/conflict.csv"}, code: ExitError},
		{name: "streamers_import_empty", args: []string{"streamers", "import", "testdata/import/empty.txt"}, code: ExitError},
		{name: "streamers_import_missing", args: []string{"streamers", "import", "testdata/import/none.txt"}, code: ExitError},
		{name: "usage_import_no_file", args: []string{"streamers", "import"}, code: ExitUsage},
		{name: "usage_export_table", args: []string{"streamers", "export", "-o", "table"}, code: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fixture(t)
			r := runWithStdin(t, srv.Path(), tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			checkGolden(t, tt.name, addedAt.ReplaceAllString(r.golden(srv.Path(), tt.args), `"added_at": "<scrubbed>"`))
		})
	}
}

// runWithStdin is run with stdin and a terminal test for progress lines.
func runWithStdin(t *testing.T, socket, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	e := testEnv(socket, &stdout, &stderr)
	e.stdin = strings.NewReader(stdin)
	code := e.run(t.Context(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestImportBadFileChangesNothing: a file with any bad line adds nobody.
func TestImportBadFileChangesNothing(t *testing.T) {
	for _, file := range []string{"bad.txt", "conflict.csv"} {
		t.Run(file, func(t *testing.T) {
			srv := fixture(t)
			before := srv.LastSeq()
			r := run(t, t.Context(), srv.Path(), "streamers", "import", filepath.Join("testdata", "import", file))
			if r.code != ExitError || !strings.Contains(r.stderr, "nothing imported") {
				t.Errorf("exit %d, stderr %q; want 1 and \"nothing imported\"", r.code, r.stderr)
			}
			if srv.LastSeq() != before {
				t.Errorf("the collector published events (seq %d → %d) for a rejected file", before, srv.LastSeq())
			}
		})
	}
}

// watched is the collector's watch list as slug → channel id.
func watched(t *testing.T, srv *kickapitest.Server) map[string]int64 {
	t.Helper()
	resp, err := srv.Dial(t).ListStreamers(t.Context(), &kickmonv1.ListStreamersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, s := range resp.GetStreamers() {
		m[s.GetSlug()] = s.GetChannelId()
	}
	return m
}

// TestExportImportRoundTrip: what one collector exports, a fresh one
// imports to the same watch list, and importing again changes nothing.
func TestExportImportRoundTrip(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			from := fixture(t)
			dave := dave()
			dave.ChannelId = 204
			from.SetStreamers(alice(), bob(), carol(), dave)
			exp := run(t, t.Context(), from.Path(), "streamers", "export", "-o", format)
			if exp.code != ExitOK {
				t.Fatalf("export: exit %d: %s", exp.code, exp.stderr)
			}
			file := filepath.Join(t.TempDir(), "watch."+format)
			if err := os.WriteFile(file, []byte(exp.stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			to := kickapitest.NewServer(t)
			to.SetResolvable(alice(), bob(), carol(), dave)
			first := run(t, t.Context(), to.Path(), "streamers", "import", file)
			if first.code != ExitOK {
				t.Fatalf("import: exit %d: %s", first.code, first.stderr)
			}
			if diff := cmp.Diff(watched(t, from), watched(t, to)); diff != "" {
				t.Errorf("imported watch list (-exported +imported):\n%s", diff)
			}
			seq := to.LastSeq()
			again := run(t, t.Context(), to.Path(), "streamers", "import", file)
			if again.code != ExitOK || countLines(again.stdout, "already watched ") != 4 || to.LastSeq() != seq {
				t.Errorf("second import: exit %d, seq %d → %d, output:\n%s", again.code, seq, to.LastSeq(), again.stdout)
			}
		})
	}
}

// TestImportProgress: a long import draws "n/N added, k failed" on a
// terminal, and nothing of the kind when stderr is not one.
func TestImportProgress(t *testing.T) {
	const n = 2*importBatch + 7
	var slugs []string
	var known []*kickmonv1.Streamer
	for i := range n {
		slug := fmt.Sprintf("s%03d", i)
		slugs = append(slugs, slug)
		if i%10 != 3 { // every tenth is unknown to Kick
			known = append(known, &kickmonv1.Streamer{BroadcasterUserId: int64(1000 + i), Slug: slug})
		}
	}
	failed := n - len(known)
	for _, terminal := range []bool{true, false} {
		t.Run(fmt.Sprint("terminal=", terminal), func(t *testing.T) {
			srv := kickapitest.NewServer(t)
			srv.SetResolvable(known...)
			var stdout, stderr syncBuffer
			e := testEnv(srv.Path(), &stdout, &stderr)
			e.isTerminal = func(w io.Writer) bool { return terminal && w == &stderr }
			e.stdin = strings.NewReader(strings.Join(slugs, "\n"))
			if code := e.run(t.Context(), []string{"streamers", "import", "-"}); code != ExitError {
				t.Fatalf("exit %d, want 1 (some slugs unknown): %s", code, stderr.String())
			}
			last := fmt.Sprintf("%d/%d added, %d failed", len(known), n, failed)
			if got := strings.Contains(stderr.String(), last); got != terminal {
				t.Errorf("progress %q shown: %v, want %v; stderr:\n%q", last, got, terminal, stderr.String())
			}
			if !terminal && strings.Contains(stderr.String(), "\r") {
				t.Errorf("carriage returns on a pipe: %q", stderr.String())
			}
			if terminal && !strings.HasSuffix(stderr.String(), "\r\033[K") {
				t.Errorf("the progress line is not erased at the end: %q", stderr.String())
			}
			if want := fmt.Sprintf("%d streamers: %d added, 0 already watched, %d failed\n", n, len(known), failed); !strings.HasSuffix(stdout.String(), want) {
				t.Errorf("summary missing; stdout ends %q", stdout.String()[max(0, len(stdout.String())-200):])
			}
			if got := countLines(stdout.String(), "added s"); got != len(known) {
				t.Errorf("%d per-slug lines, want %d", got, len(known))
			}
		})
	}
}

func TestParseWatchList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []importEntry
		err      string
	}{
		{name: "plain", in: "a\n\n  b  \n# c\nd # e\n", want: []importEntry{{slug: "a"}, {slug: "b"}, {slug: "d"}}},
		{name: "crlf and BOM", in: "\uFEFFa\r\nb\r\n", want: []importEntry{{slug: "a"}, {slug: "b"}}},
		{name: "duplicates merge", in: "a\nA\n", want: []importEntry{{slug: "a"}}},
		{name: "csv", in: "slug,broadcaster_user_id,channel_id\na,1,10\nb,2,\n", want: []importEntry{{slug: "a", channelID: 10}, {slug: "b"}}},
		{name: "csv columns by name", in: "slug,channel_id\na,10\n", want: []importEntry{{slug: "a", channelID: 10}}},
		{name: "csv duplicate adds a channel id", in: "slug,channel_id\na,\na,10\n", want: []importEntry{{slug: "a", channelID: 10}}},
		{name: "json export", in: `{"streamers":[{"slug":"a","broadcaster_user_id":"1","channel_id":"10"},{"slug":"b"}]}`, want: []importEntry{{slug: "a", channelID: 10}, {slug: "b"}}},
		{name: "json numbers", in: `{"streamers":[{"slug":"a","channel_id":10}]}`, want: []importEntry{{slug: "a", channelID: 10}}},
		{name: "two words", in: "a b\n", err: `line 1: "a b" is not one slug`},
		{name: "every bad line", in: "a b\nok\nc,d\n", err: "line 1: \"a b\" is not one slug (one slug per line)\nline 3: \"c,d\""},
		{name: "csv bad channel", in: "slug,channel_id\na,-1\n", err: `line 2: channel_id "-1" is not a positive number`},
		{name: "csv conflicting channels", in: "slug,channel_id\na,1\na,2\n", err: "a is listed with channel ids 1 and 2"},
		{name: "json without slug", in: `{"streamers":[{"channel_id":"10"}]}`, err: "streamer 1: empty slug"},
		{name: "broken json", in: `{"streamers":[`, err: "not a streamers export (JSON)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := parseWatchList([]byte(tt.in))
			err := errors.Join(errs...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(importEntry{})); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

// countLines counts the lines of s that start with prefix.
func countLines(s, prefix string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}
