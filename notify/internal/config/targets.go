package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/kickmon/kickmon/notify/internal/message"
	"go.yaml.in/yaml/v3"
)

// Target types.
const (
	Discord = "discord"
	Slack   = "slack"
	Ntfy    = "ntfy"
	Webhook = "webhook"
)

// DefaultBackLiveWithin is how soon after the last notification about a
// streamer a new session is announced as "back live".
const DefaultBackLiveWithin = 10 * time.Minute

// maxBackLiveWithin stays well inside the 24 hours River keeps finished
// jobs, which is where the last notification is looked up.
const maxBackLiveWithin = 12 * time.Hour

// Target is one destination, validated. URL and Secret are secrets.
type Target struct {
	Name       string
	Type       string
	URL        string // never logged
	Streamers  []string
	Events     []string
	Categories []string
	Quiet      *QuietHours
	// BackLiveWithin: a session starting this soon after the last
	// notification about the streamer is announced as back_live (0: never).
	BackLiveWithin time.Duration
	Templates      map[string]*template.Template // by message kind; defaults filled in
	Secret         []byte                        // webhook: the HMAC-SHA256 key
}

// QuietHours is a daily window (in Location) when a target gets nothing.
type QuietHours struct {
	Start, End time.Duration // since midnight; End < Start wraps past midnight
	Location   *time.Location
}

// Contains reports whether t falls in the window.
func (q *QuietHours) Contains(t time.Time) bool {
	if q == nil {
		return false
	}
	t = t.In(q.Location)
	d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	if q.Start <= q.End {
		return d >= q.Start && d < q.End
	}
	return d >= q.Start || d < q.End
}

type rawFile struct {
	Targets []rawTarget `yaml:"targets"`
}

type rawTarget struct {
	Name           string            `yaml:"name"`
	Type           string            `yaml:"type"`
	URL            string            `yaml:"url"`
	URLFile        string            `yaml:"url_file"`
	Streamers      []string          `yaml:"streamers"`
	Events         []string          `yaml:"events"`
	Categories     []string          `yaml:"categories"`
	QuietHours     string            `yaml:"quiet_hours"`
	Timezone       string            `yaml:"timezone"`
	BackLiveWithin *string           `yaml:"back_live_within"`
	Templates      map[string]string `yaml:"templates"`
	Secret         string            `yaml:"secret"`
	SecretFile     string            `yaml:"secret_file"`
}

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	slugPattern  = regexp.MustCompile(`^[a-z0-9_-]+$`)
	clockPattern = regexp.MustCompile(`^([01]\d|2[0-3]):([0-5]\d)$`)
)

// LoadTargets reads and validates the targets file at path. A relative
// url_file or secret_file is looked up in credDir (systemd's
// $CREDENTIALS_DIRECTORY) when set and the file is there, else beside the
// targets file. The error lists every problem.
func LoadTargets(path string, allowInsecure bool, credDir string) ([]*Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("KICKMON_NOTIFY_CONFIG: read %s: %v", path, errors.Unwrap(err))
	}
	var dirs []string
	if credDir != "" {
		dirs = append(dirs, credDir)
	}
	return ParseTargets(path, b, append(dirs, filepath.Dir(path)), allowInsecure)
}

// ParseTargets validates the targets file's contents (name is for
// messages; relative secret files are looked up in dirs, in order).
func ParseTargets(name string, b []byte, dirs []string, allowInsecure bool) ([]*Target, error) {
	var f rawFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Problems: []string{fmt.Sprintf("%s: %v", name, err)}}
	}
	var p []string
	problem := func(format string, args ...any) { p = append(p, fmt.Sprintf(name+": "+format, args...)) }
	if len(f.Targets) == 0 {
		problem("no targets (add one under targets:)")
	}
	seen := map[string]bool{}
	var out []*Target
	for i, r := range f.Targets {
		label := fmt.Sprintf("target %d", i+1)
		if r.Name != "" {
			label = fmt.Sprintf("target %q", r.Name)
		}
		tp := func(format string, args ...any) { problem(label+": "+format, args...) }
		t := &Target{Name: r.Name, Type: r.Type, Categories: r.Categories, BackLiveWithin: DefaultBackLiveWithin}
		switch {
		case r.Name == "":
			tp("name is required")
		case !namePattern.MatchString(r.Name):
			tp("name must be letters, digits, '_', '.' or '-' (at most 63)")
		case seen[r.Name]:
			tp("name is used by an earlier target")
		}
		seen[r.Name] = true
		if !slices.Contains([]string{Discord, Slack, Ntfy, Webhook}, r.Type) {
			tp("type %q: want discord, slack, ntfy or webhook", r.Type)
		}
		t.URL = secret(tp, "url", r.URL, r.URLFile, dirs, true)
		if t.URL != "" {
			if err := checkURL(t.URL, allowInsecure); err != nil {
				tp("url: %v", err)
			}
		}
		if s := secret(tp, "secret", r.Secret, r.SecretFile, dirs, r.Type == Webhook); s != "" {
			if r.Type != Webhook {
				tp("secret/secret_file: only webhook targets sign their deliveries")
			}
			t.Secret = []byte(s)
		}
		for _, s := range r.Streamers {
			s = strings.ToLower(strings.TrimSpace(s))
			if !slugPattern.MatchString(s) {
				tp("streamers: %q is not a Kick slug", s)
			}
			t.Streamers = append(t.Streamers, s)
		}
		t.Events = r.Events
		if len(t.Events) == 0 {
			t.Events = []string{message.Live}
		}
		for _, e := range t.Events {
			if !slices.Contains(message.Events, e) {
				tp("events: %q: want %s", e, strings.Join(message.Events, ", "))
			}
		}
		if r.QuietHours != "" {
			q, err := parseQuiet(r.QuietHours, r.Timezone)
			if err != nil {
				tp("quiet_hours: %v", err)
			}
			t.Quiet = q
		} else if r.Timezone != "" {
			tp("timezone is only used with quiet_hours")
		}
		if r.BackLiveWithin != nil {
			d, err := time.ParseDuration(*r.BackLiveWithin)
			switch {
			case err != nil:
				tp("back_live_within %q: not a duration (e.g. 10m; 0 turns it off)", *r.BackLiveWithin)
			case d < 0 || d > maxBackLiveWithin:
				tp("back_live_within %s: must be between 0 and %s", d, maxBackLiveWithin)
			}
			t.BackLiveWithin = d
		}
		t.Templates = message.DefaultTemplates()
		for kind, text := range r.Templates {
			if !slices.Contains(message.Kinds, kind) {
				tp("templates: %q: want one of %s", kind, strings.Join(message.Kinds, ", "))
				continue
			}
			tmpl, err := message.Parse(kind, text)
			if err != nil {
				tp("templates.%s: %v", kind, err)
				continue
			}
			t.Templates[kind] = tmpl
		}
		out = append(out, t)
	}
	if len(p) > 0 {
		return nil, &Error{Problems: p}
	}
	return out, nil
}

// secret reads an inline value or a file (exactly one may be set; one
// must be when required). Problems never quote the value.
func secret(tp func(string, ...any), key, inline, file string, dirs []string, required bool) string {
	switch {
	case inline != "" && file != "":
		tp("set %s or %s_file, not both", key, key)
		return ""
	case file != "":
		if !filepath.IsAbs(file) {
			rel := file
			for i, d := range dirs {
				file = filepath.Join(d, rel)
				if _, err := os.Stat(file); err == nil || i == len(dirs)-1 {
					break
				}
			}
		}
		b, err := os.ReadFile(file)
		if err != nil {
			tp("%s_file %s: %v", key, file, errors.Unwrap(err))
			return ""
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			tp("%s_file %s is empty", key, file)
		}
		return v
	case inline == "" && required:
		tp("%s or %s_file is required", key, key)
	}
	return inline
}

// checkURL accepts https, and plain http to a loopback host (local
// sinks, tests) or when allowInsecure. Its errors never quote the URL.
func checkURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); allowInsecure || u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("plain http to a remote host: use https (or KICKMON_ALLOW_INSECURE=true)")
	}
	return fmt.Errorf("scheme %q: want https", u.Scheme)
}

// parseQuiet parses "HH:MM-HH:MM" in the IANA zone tz (default UTC).
func parseQuiet(s, tz string) (*QuietHours, error) {
	from, to, ok := strings.Cut(s, "-")
	start, err1 := clock(strings.TrimSpace(from))
	end, err2 := clock(strings.TrimSpace(to))
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q: want HH:MM-HH:MM, e.g. 23:00-07:00", s)
	}
	if start == end {
		return nil, fmt.Errorf("%q: an empty window", s)
	}
	loc := time.UTC
	if tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("timezone %q: not an IANA time zone (e.g. Europe/Berlin)", tz)
		}
	}
	return &QuietHours{Start: start, End: end, Location: loc}, nil
}

func clock(s string) (time.Duration, error) {
	m := clockPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New("bad clock")
	}
	h, _ := time.ParseDuration(m[1] + "h")
	mi, _ := time.ParseDuration(m[2] + "m")
	return h + mi, nil
}
