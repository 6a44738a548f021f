package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// outputFormat is the value of -o: "table" or "json".
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }

// Type names the value in help (pflag.Value).
func (f *outputFormat) Type() string { return "format" }

func (f *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case formatTable, formatJSON:
		*f = outputFormat(s)
		return nil
	}
	return fmt.Errorf("output format %q: want table or json", s)
}

// jsonOptions is the documented, stable JSON mapping (see the package doc).
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// writeJSON writes m as one indented JSON document. protojson's whitespace is
// deliberately unstable, so it is normalised here.
func writeJSON(w io.Writer, m proto.Message) error {
	return writeJSONWith(w, jsonOptions, m)
}

// writeJSONWith is writeJSON with other marshal options.
func writeJSONWith(w io.Writer, opts protojson.MarshalOptions, m proto.Message) error {
	raw, err := opts.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("indent JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// writeJSONLine writes m as one compact JSON object on one line.
func writeJSONLine(w io.Writer, m proto.Message) error {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return fmt.Errorf("compact JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// newTable returns a writer that aligns tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// short returns an enum's name without its prefix, in lower case
// (LIVE_STATE_LIVE → "live").
func short(v fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(v.String(), prefix))
}

func stateName(s kickmonv1.LiveState) string { return short(s, "LIVE_STATE_") }
func sourceName(s kickmonv1.Source) string   { return short(s, "SOURCE_") }
func healthName(h kickmonv1.Health) string   { return short(h, "HEALTH_") }

// kindName is the event kind as the database stores it (STREAM_STARTED).
func kindName(k kickmonv1.EventKind) string {
	return strings.TrimPrefix(k.String(), "EVENT_KIND_")
}

// duration formats d compactly: "45s", "12m5s", "2h13m", "3d4h".
func duration(d time.Duration) string {
	if d < 0 {
		return "-" + duration(-d)
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// since is how long ago ts was, as a duration ("2h13m"); "-" when unset.
func (e *env) since(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return duration(e.now().Sub(ts.AsTime()))
}

// ago is since with " ago" ("12s ago"), or "in 5m" for future times.
func (e *env) ago(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "never"
	}
	d := e.now().Sub(ts.AsTime())
	if d < 0 {
		return "in " + duration(-d)
	}
	return duration(d) + " ago"
}

// when is an absolute time with its relative form: "2026-03-01 10:00:00 UTC (2h0m ago)".
func (e *env) when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return e.clock(ts).Format("2006-01-02 15:04:05 MST") + " (" + e.ago(ts) + ")"
}

// clock is ts in the output's time zone.
func (e *env) clock(ts *timestamppb.Timestamp) time.Time {
	return ts.AsTime().In(e.loc)
}

// cell makes s safe for one table cell: control characters become spaces and
// it is cut to max runes with "…".
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); max > 0 && len(r) > max {
		return string(r[:max-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

// coverage summarises per-source coverage: "poll,pusher", or
// "poll (pusher blind)" when some are blind, "-" when unknown.
func coverage(covs []*kickmonv1.Coverage) string {
	var seeing, blind []string
	for _, c := range covs {
		if c.GetBlind() {
			blind = append(blind, sourceName(c.GetSource()))
		} else {
			seeing = append(seeing, sourceName(c.GetSource()))
		}
	}
	switch {
	case len(covs) == 0:
		return "-"
	case len(seeing) == 0:
		return "none (" + strings.Join(blind, ",") + " blind)"
	case len(blind) == 0:
		return strings.Join(seeing, ",")
	}
	return strings.Join(seeing, ",") + " (" + strings.Join(blind, ",") + " blind)"
}

// bytesize formats n bytes: "512 B", "1.5 KiB", "1.0 GiB".
func bytesize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
