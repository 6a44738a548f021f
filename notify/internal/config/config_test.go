package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const hookURL = "https://discord.com/api/webhooks/123/SECRETTOKEN"

func TestParseTargets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "slack-url"), []byte("https://hooks.slack.com/services/T/B/SECRETSLACK\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		yaml  string
		want  []string // substrings of the problems, one per problem
		check func(t *testing.T, ts []*Target)
	}{
		{name: "minimal discord", yaml: "targets:\n  - {name: d, type: discord, url: " + hookURL + "}\n",
			check: func(t *testing.T, ts []*Target) {
				if ts[0].URL != hookURL || len(ts[0].Events) != 1 || ts[0].Events[0] != "live" || ts[0].BackLiveWithin != DefaultBackLiveWithin {
					t.Errorf("target = %+v", ts[0])
				}
				if ts[0].Templates["live"] == nil || ts[0].Templates["test"] == nil {
					t.Error("default templates missing")
				}
			}},
		{name: "url_file beside the file, filters, quiet hours, templates", yaml: `targets:
  - name: s
    type: slack
    url_file: slack-url
    streamers: [XQC, trainwreckstv]
    events: [live, offline, title]
    categories: [Slots]
    quiet_hours: "23:00-07:00"
    timezone: Europe/Berlin
    back_live_within: 0s
    templates: {live: "{{.Slug}} on {{.URL}}"}
`, check: func(t *testing.T, ts []*Target) {
			tg := ts[0]
			if !strings.Contains(tg.URL, "SECRETSLACK") || tg.Streamers[0] != "xqc" || tg.BackLiveWithin != 0 || tg.Quiet == nil {
				t.Errorf("target = %+v", tg)
			}
			if tg.Quiet.Start != 23*time.Hour || tg.Quiet.End != 7*time.Hour || tg.Quiet.Location.String() != "Europe/Berlin" {
				t.Errorf("quiet = %+v", tg.Quiet)
			}
		}},
		{name: "webhook with secret", yaml: "targets:\n  - {name: w, type: webhook, url: 'http://127.0.0.1:9/hook', secret: k}\n",
			check: func(t *testing.T, ts []*Target) {
				if string(ts[0].Secret) != "k" {
					t.Errorf("secret = %q", ts[0].Secret)
				}
			}},
		{name: "empty file", yaml: "", want: []string{"no targets"}},
		{name: "unknown key", yaml: "targets:\n  - {name: d, type: discord, url: " + hookURL + ", colour: red}\n", want: []string{"colour"}},
		{name: "every problem at once", yaml: `targets:
  - type: telegram
  - name: "bad name!"
    type: discord
    url: ` + hookURL + `
    url_file: x
  - name: dup
    type: webhook
    url: http://example.com/hook
  - name: dup
    type: ntfy
    url: ftp://ntfy.sh/topic
    secret: s
    streamers: ["Not A Slug"]
    events: [live, online]
    quiet_hours: "25:00-07:00"
    back_live_within: forever
    templates: {live: "{{.Nope}}", party: "x", offline: "{{"}
  - name: e
    type: slack
    url_file: empty
    timezone: Mars/Olympus
    back_live_within: 48h
`, want: []string{
			`target 1: name is required`,
			`target 1: type "telegram"`,
			`target 1: url or url_file is required`,
			`"bad name!": name must be`,
			`"bad name!": set url or url_file, not both`,
			`"dup": url: plain http to a remote host`,
			`"dup": secret or secret_file is required`,
			`"dup": name is used by an earlier target`,
			`"dup": url: scheme "ftp"`,
			`"dup": secret/secret_file: only webhook`,
			`"dup": streamers: "not a slug"`,
			`"dup": events: "online"`,
			`"dup": quiet_hours: "25:00-07:00"`,
			`"dup": back_live_within "forever"`,
			`"dup": templates.live: `,
			`"dup": templates: "party"`,
			`"dup": templates.offline: `,
			`"e": url_file `,
			`"e": timezone is only used with quiet_hours`,
			`"e": back_live_within 48h0m0s: must be between`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := ParseTargets("notify.yaml", []byte(tt.yaml), []string{t.TempDir(), dir}, false)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				tt.check(t, ts)
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no problem mentions %q:\n%v", w, err)
				}
			}
			for _, secret := range []string{"SECRETTOKEN", "SECRETSLACK", "example.com"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("a problem quotes a target URL (%s):\n%v", secret, err)
				}
			}
		})
	}
}

func TestLoadListsEnvAndFileProblems(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "notify.yaml")
	if err := os.WriteFile(cfgPath, []byte("targets:\n  - {name: d, type: discord}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KICKMON_NOTIFY_CONFIG":  cfgPath,
		"KICKMON_NOTIFY_SOCKET":  "relative.sock",
		"KICKMON_LOG_LEVEL":      "loud",
		"KICKMON_METRICS_ADDR":   "9100",
		"KICKMON_NOTIFY_TIMEOUT": "forever",
	}
	_, err := Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	for _, want := range []string{"KICKMON_DATABASE_URL is required", "KICKMON_NOTIFY_SOCKET", "KICKMON_LOG_LEVEL", "KICKMON_METRICS_ADDR", "KICKMON_NOTIFY_TIMEOUT", `target "d": url or url_file is required`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	env["KICKMON_DATABASE_URL"] = "postgres://u:hunter2@localhost/db"
	env["KICKMON_NOTIFY_SOCKET"] = "/tmp/n.sock"
	env["KICKMON_LOG_LEVEL"] = "debug"
	env["KICKMON_METRICS_ADDR"] = "127.0.0.1:0"
	env["KICKMON_NOTIFY_TIMEOUT"] = "5s"
	if err := os.WriteFile(cfgPath, []byte("targets:\n  - {name: d, type: discord, url: "+hookURL+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 1 || strings.Contains(Redact(c.DatabaseURL), "hunter2") {
		t.Errorf("config = %+v, redacted %s", c, Redact(c.DatabaseURL))
	}
}

func TestQuietHours(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	night := &QuietHours{Start: 23 * time.Hour, End: 7 * time.Hour, Location: berlin}
	lunch := &QuietHours{Start: 12 * time.Hour, End: 13 * time.Hour, Location: time.UTC}
	tests := []struct {
		q    *QuietHours
		at   time.Time
		want bool
	}{
		{night, time.Date(2026, 12, 6, 22, 30, 0, 0, time.UTC), true}, // 23:30 in Berlin
		{night, time.Date(2026, 12, 6, 21, 59, 0, 0, time.UTC), false},
		{night, time.Date(2026, 12, 7, 5, 59, 0, 0, time.UTC), true}, // 06:59 in Berlin
		{night, time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC), false},
		{lunch, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), true},
		{lunch, time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC), false},
		{nil, time.Now(), false},
	}
	for _, tt := range tests {
		if got := tt.q.Contains(tt.at); got != tt.want {
			t.Errorf("%+v.Contains(%s) = %v, want %v", tt.q, tt.at, got, tt.want)
		}
	}
}

// The example shipped in deploy/ is valid.
func TestExampleFile(t *testing.T) {
	b, err := os.ReadFile("../../../deploy/notify.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "discord-url"), []byte(hookURL), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := ParseTargets("notify.yaml.example", b, []string{creds}, false)
	if err != nil || len(ts) != 1 || ts[0].URL != hookURL {
		t.Fatalf("example: %v, %+v", err, ts)
	}
}
