package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	// importBatch is how many slugs without a channel id go in one
	// AddStreamers call; a file longer than that shows progress on a terminal.
	importBatch = 50
	// maxImportBytes bounds what import reads: a watch list of 100,000
	// streamers is about 5 MiB of JSON.
	maxImportBytes = 32 << 20
)

// importEntry is one streamer to watch.
type importEntry struct {
	slug      string
	channelID int64 // 0: unknown
}

// streamersImportCommand is "kickctl streamers import FILE|-".
func (e *env) streamersImportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Watch every streamer in a file (streamers export output, or one slug per line; - reads stdin)",
		Long: `Watch every streamer in FILE, or standard input for -: the JSON or CSV that streamers export
prints (or streamers list -o json), or plain text with one slug per line (# starts a comment).
Channel ids in the file are passed on as with streamers add --channel-id. Streamers already
watched are reported as such and left alone, so importing twice changes nothing.
A file with a bad line imports nothing. Exit 1 if any slug fails.`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault // file names
		},
	}
	out := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("streamers import takes one file (or - for stdin), got %d", len(args))
		}
		entries, err := readWatchList(args[0], cmd.InOrStdin())
		if err != nil {
			return err
		}
		return e.importStreamers(cmd.Context(), entries, *out)
	}
	return cmd
}

// readWatchList reads and parses the file name ("-": stdin).
func readWatchList(name string, stdin io.Reader) ([]importEntry, error) {
	r, label := stdin, "standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		r, label = f, name
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("import: read %s: %w", label, err)
	}
	if len(data) > maxImportBytes {
		return nil, fmt.Errorf("import: %s is larger than %d MiB; nothing imported", label, maxImportBytes>>20)
	}
	entries, errs := parseWatchList(data)
	switch len(errs) {
	case 0:
	case 1:
		return nil, fmt.Errorf("import: %s: %w; nothing imported", label, errs[0])
	default:
		lines := make([]string, len(errs))
		for i, err := range errs {
			lines[i] = "  " + err.Error()
		}
		return nil, fmt.Errorf("import: %s: %d problems, nothing imported:\n%s", label, len(errs), strings.Join(lines, "\n"))
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("import: %s has no streamers", label)
	}
	return entries, nil
}

// parseWatchList reads JSON ("streamers export" or "streamers list -o
// json"), CSV (with export's header) or one slug per line. Every bad line is
// reported; duplicates are merged, and a slug given two channel ids is an
// error.
func parseWatchList(data []byte) ([]importEntry, []error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	trimmed := bytes.TrimSpace(data)
	var (
		entries []importEntry
		errs    []error
	)
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		var list kickmonv1.ListStreamersResponse
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(trimmed, &list); err != nil {
			return nil, []error{fmt.Errorf("not a streamers export (JSON): %w", err)}
		}
		for i, s := range list.GetStreamers() {
			if s.GetChannelId() < 0 {
				errs = append(errs, fmt.Errorf("streamer %d (%q): channel_id %d must be positive", i+1, s.GetSlug(), s.GetChannelId()))
			}
			entries = append(entries, importEntry{slug: s.GetSlug(), channelID: s.GetChannelId()})
		}
		for i, en := range entries {
			if err := checkSlug(en.slug); err != nil {
				errs = append(errs, fmt.Errorf("streamer %d: %w", i+1, err))
			}
		}
	case isCSVHeader(trimmed):
		entries, errs = parseCSV(trimmed)
	default:
		entries, errs = parseLines(data)
	}
	entries, dupErrs := mergeDuplicates(entries)
	if errs = append(errs, dupErrs...); len(errs) > 0 {
		return nil, errs
	}
	return entries, nil
}

func isCSVHeader(data []byte) bool {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	return strings.HasPrefix(strings.TrimSpace(string(first)), csvHeader[0]+",")
}

// parseCSV reads CSV with a header naming at least the slug column.
func parseCSV(data []byte) ([]importEntry, []error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, []error{fmt.Errorf("CSV header: %w", err)}
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	var (
		entries []importEntry
		errs    []error
	)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			errs = append(errs, err)
			break
		}
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		en := importEntry{slug: field("slug")}
		if err := checkSlug(en.slug); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		if c := field("channel_id"); c != "" {
			id, err := strconv.ParseInt(c, 10, 64)
			if err != nil || id <= 0 {
				errs = append(errs, fmt.Errorf("line %d: channel_id %q is not a positive number", line, c))
				continue
			}
			en.channelID = id
		}
		entries = append(entries, en)
	}
	return entries, errs
}

// parseLines reads one slug per line; "#" starts a comment.
func parseLines(data []byte) ([]importEntry, []error) {
	var (
		entries []importEntry
		errs    []error
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxImportBytes)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := checkSlug(line); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		entries = append(entries, importEntry{slug: line})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return entries, errs
}

// checkSlug rejects what cannot be one slug; the collector checks the rest
// (and answers per slug).
func checkSlug(s string) error {
	switch {
	case s == "":
		return errors.New("empty slug")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("%q is not one slug (one slug per line)", s)
	}
	return nil
}

// mergeDuplicates keeps the first of each slug (case-insensitive, as Kick's
// slugs are), taking a channel id from a later line when the first had none.
func mergeDuplicates(entries []importEntry) ([]importEntry, []error) {
	var (
		out  []importEntry
		errs []error
		at   = map[string]int{}
	)
	for _, en := range entries {
		key := strings.ToLower(en.slug)
		i, seen := at[key]
		switch {
		case !seen:
			at[key] = len(out)
			out = append(out, en)
		case out[i].channelID == 0:
			out[i].channelID = en.channelID
		case en.channelID != 0 && en.channelID != out[i].channelID:
			errs = append(errs, fmt.Errorf("%s is listed with channel ids %d and %d", en.slug, out[i].channelID, en.channelID))
		}
	}
	return out, errs
}

// importStreamers adds entries in order: slugs without a channel id in
// batches, the others one by one (a channel id goes with exactly one slug).
// Results are printed per slug as they come; on a terminal, a progress line
// on stderr shows how far a long import is.
func (e *env) importStreamers(ctx context.Context, entries []importEntry, out outputFormat) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	p := &importProgress{env: e, total: len(entries), show: len(entries) > importBatch && e.isTerminal(e.stderr)}
	all := &kickmonv1.AddStreamersResponse{}
	var pending []string
	call := func(slugs []string, channelID int64) error {
		if len(slugs) == 0 {
			return nil
		}
		var resp *kickmonv1.AddStreamersResponse
		err := e.rpcError("import", e.withTimeout(ctx, func(ctx context.Context) (err error) {
			resp, err = c.AddStreamers(ctx, &kickmonv1.AddStreamersRequest{Slugs: slugs, ChannelId: channelID})
			return err
		}))
		if err != nil {
			p.clear()
			return err
		}
		all.Results = append(all.Results, resp.GetResults()...)
		p.record(resp.GetResults(), out)
		return nil
	}
	for _, en := range entries {
		if en.channelID == 0 {
			if pending = append(pending, en.slug); len(pending) == importBatch {
				if err := call(pending, 0); err != nil {
					return err
				}
				pending = nil
			}
			continue
		}
		if err := call(pending, 0); err != nil {
			return err
		}
		pending = nil
		if err := call([]string{en.slug}, en.channelID); err != nil {
			return err
		}
	}
	if err := call(pending, 0); err != nil {
		return err
	}
	p.clear()
	if out == formatJSON {
		return e.printResults(out, all, all.GetResults(), importLines)
	}
	fmt.Fprintf(e.stdout, "%d streamer%s: %d added, %d already watched, %d failed\n", p.total, plural(p.total), p.added, p.same, p.failed)
	if p.failed > 0 {
		return errReported
	}
	return nil
}

// importLines prints import's results as streamers add does.
var importLines = resultLines{verb: "add", done: "added", same: "already watched"}

// importProgress counts import's results, prints them per slug (table
// output) and keeps a progress line on a terminal.
type importProgress struct {
	*env
	total, added, same, failed int
	show, drawn                bool
}

func (p *importProgress) record(results []*kickmonv1.StreamerResult, out outputFormat) {
	for _, r := range results {
		switch {
		case r.GetError() != "":
			p.failed++
		case r.GetUnchanged():
			p.same++
		default:
			p.added++
		}
	}
	if out == formatTable {
		p.clear()
		_ = p.printResults(out, nil, results, importLines) // failures are counted above
	}
	if p.show {
		fmt.Fprintf(p.stderr, "%d/%d added, %d failed", p.added+p.same, p.total, p.failed)
		p.drawn = true
	}
}

// clear erases the progress line so that other output starts on a clean line.
func (p *importProgress) clear() {
	if p.drawn {
		fmt.Fprint(p.stderr, "\r\033[K")
		p.drawn = false
	}
}

// isTerminal reports whether w is a terminal (progress lines only go there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
