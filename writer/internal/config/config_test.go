package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"KICKMON_DATABASE_URL": "host=/run/postgresql dbname=kickmon"}), "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DatabaseURL:     "host=/run/postgresql dbname=kickmon",
		Socket:          DefaultSocket,
		BatchInterval:   100 * time.Millisecond,
		BatchSize:       10,
		MaxBatch:        DefaultMaxBatch,
		ConfirmInterval: 30 * time.Second,
		OnLogChange:     "resync",
		EventsRetention: 180 * 24 * time.Hour,
	}
	if d := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestLoadListsEveryProblem(t *testing.T) {
	_, err := Load(env(map[string]string{
		"KICKMON_BATCH_INTERVAL":   "soon",
		"KICKMON_BATCH_SIZE":       "0",
		"KICKMON_CONFIRM_INTERVAL": "often",
		"KICKMON_ALLOW_INSECURE":   "maybe",
		"KICKMON_NOTIFY_OUTBOX":    "sometimes",
		"KICKMON_LOG_LEVEL":        "loud",
		"KICKMON_SOCKET":           "relative.sock",
		"KICKMON_METRICS_ADDR":     "9100",
		"KICKMON_PPROF_ADDR":       ":6060",
	}), "")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	for _, want := range []string{"KICKMON_BATCH_INTERVAL", "KICKMON_BATCH_SIZE", "KICKMON_CONFIRM_INTERVAL", "KICKMON_ALLOW_INSECURE", "KICKMON_NOTIFY_OUTBOX", "KICKMON_LOG_LEVEL", "KICKMON_SOCKET", "KICKMON_METRICS_ADDR", "KICKMON_DATABASE_URL is required", "KICKMON_PPROF_ADDR=\":6060\": profiles are served on loopback only"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if len(ce.Problems) != 10 {
		t.Errorf("%d problems, want 10:\n%v", len(ce.Problems), err)
	}
}

func TestConfirmInterval(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{"", DefaultConfirmInterval, ""},
		{"1s", time.Second, ""},
		{"5m", 5 * time.Minute, ""},
		{"1h", time.Hour, ""},
		{"500ms", 0, "KICKMON_CONFIRM_INTERVAL=500ms: must be at least 1s and at most 1h"},
		{"2h", 0, "KICKMON_CONFIRM_INTERVAL=2h0m0s: must be at least 1s and at most 1h"},
		{"-30s", 0, "KICKMON_CONFIRM_INTERVAL=-30s: must be at least 1s"},
		{"30", 0, `KICKMON_CONFIRM_INTERVAL="30": not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := Load(env(map[string]string{"KICKMON_DATABASE_URL": "host=/run/postgresql", "KICKMON_CONFIRM_INTERVAL": tt.value}), "")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			case err == nil && c.ConfirmInterval != tt.want:
				t.Errorf("ConfirmInterval = %s, want %s", c.ConfirmInterval, tt.want)
			}
		})
	}
}

func TestDatabaseURLSources(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, Credential), []byte("host=/cred dbname=k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(t.TempDir(), "writer.env")
	if err := os.WriteFile(envFile, []byte("KICKMON_DATABASE_URL=host=/file dbname=k\nKICKMON_BATCH_SIZE=50\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		envFile string
		want    string
	}{
		{"environment", map[string]string{"KICKMON_DATABASE_URL": "host=/env dbname=k", "CREDENTIALS_DIRECTORY": dir}, "", "host=/env dbname=k"},
		{"credential", map[string]string{"CREDENTIALS_DIRECTORY": dir}, "", "host=/cred dbname=k"},
		{"env file", map[string]string{}, envFile, "host=/file dbname=k"},
		{"environment over env file", map[string]string{"KICKMON_DATABASE_URL": "host=/env dbname=k"}, envFile, "host=/env dbname=k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env), tt.envFile)
			if err != nil {
				t.Fatal(err)
			}
			if c.DatabaseURL != tt.want {
				t.Errorf("DatabaseURL = %q, want %q", c.DatabaseURL, tt.want)
			}
		})
	}
}

func TestCheckDatabaseURL(t *testing.T) {
	tests := []struct {
		name     string
		dsn      string
		insecure bool
		wantErr  string // "" for none
	}{
		{"unix socket", "host=/run/postgresql dbname=kickmon", false, ""},
		{"localhost", "postgres://kickmon:s3cret@localhost/kickmon", false, ""},
		{"loopback without TLS", "postgres://kickmon:s3cret@127.0.0.1:5432/kickmon?sslmode=disable", false, ""},
		{"ipv6 loopback", "postgres://kickmon:s3cret@[::1]:5432/kickmon?sslmode=disable", false, ""},
		{"remote verify-full", "postgres://kickmon:s3cret@db.example.com/kickmon?sslmode=verify-full", false, ""},
		{"remote verify-full keyword/value", "host=db.example.com password=s3cret sslmode=verify-full", false, ""},
		{"remote require", "postgres://kickmon:s3cret@db.example.com/kickmon?sslmode=require", false, `"db.example.com" is reached with TLS that checks no certificate`},
		{"remote verify-ca", "postgres://kickmon:s3cret@db.example.com/kickmon?sslmode=verify-ca", false, "not its host name"},
		{"remote default (prefer)", "postgres://kickmon:s3cret@db.example.com/kickmon", false, `"db.example.com" is reached without TLS`},
		{"remote disable keyword/value", "host=db.example.com password=s3cret sslmode=disable", false, "without TLS"},
		{"remote disable allowed", "host=db.example.com password=s3cret sslmode=disable", true, ""},
		{"local first, remote fallback", "postgres://kickmon:s3cret@localhost,db.example.com/kickmon?sslmode=disable", false, `"db.example.com" is reached without TLS`},
		{"fallback keyword/value", "host=/run/postgresql,db.example.com password=s3cret sslmode=require", false, `"db.example.com"`},
		{"fallbacks all verify-full", "host=localhost,db1.example.com,db2.example.com sslmode=verify-full password=s3cret", false, ""},
		{"sslpassword not leaked", "postgres://kickmon:s3cret@db.example.com/kickmon?sslmode=require&sslpassword=s3cret", false, "sslpassword=xxxxx"},
		{"unparsable", "postgres://kickmon:s3cret@db.example.com:notaport/kickmon", false, "cannot parse"},
		{"unparsable with sslpassword", "host=db.example.com port=x sslpassword=s3cret password=s3cret", false, "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDatabaseURL(tt.dsn, tt.insecure)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("error leaks a password: %v", err)
			case err != nil && !strings.Contains(err.Error(), "cannot parse") && !strings.Contains(err.Error(), "sslmode=verify-full"):
				t.Errorf("error %q does not say what to do", err)
			}
		})
	}
}

func TestInsecureDatabaseHostsWarns(t *testing.T) {
	weak, err := InsecureDatabaseHosts("host=localhost,db.example.com sslmode=require")
	if err != nil || len(weak) != 1 || !strings.Contains(weak[0], "db.example.com") {
		t.Fatalf("InsecureDatabaseHosts = %q, %v; want one warning about db.example.com", weak, err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://kickmon:s3cret@db/kickmon?sslmode=require", "postgres://kickmon:xxxxx@db/kickmon?sslmode=require"},
		{"postgresql://db/kickmon?password=s3cret", "postgresql://db/kickmon?password=xxxxx"},
		{"postgres://kickmon@db/kickmon", "postgres://kickmon@db/kickmon"},
		{"host=db password=s3cret dbname=k", "host=db password=xxxxx dbname=k"},
		{"host=db password='s 3\\'cret' dbname=k", "host=db password=xxxxx dbname=k"},
		{"host=/run/postgresql", "host=/run/postgresql"},
		{"postgres://u:s3cret@h1:5432,h2:5433/k?sslmode=verify-full&sslpassword=k3y", "postgres://u:xxxxx@h1:5432,h2:5433/k?sslmode=verify-full&sslpassword=xxxxx"},
		{"postgres://u:p%40ss@db/k?SSLPassword=k3y&x=1", "postgres://u:xxxxx@db/k?SSLPassword=xxxxx&x=1"},
		{"postgres://u:p@ss@db/k", "postgres://u:xxxxx@db/k"},
		{"host=db sslpassword=k3y password = s3cret", "host=db sslpassword=xxxxx password = xxxxx"},
		{"host=db sslpassword='k 3y'", "host=db sslpassword=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogChangeAndRetention(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantOn        string
		wantRetention time.Duration
		wantErr       string
	}{
		{"defaults", nil, "resync", 180 * 24 * time.Hour, ""},
		{"stop", map[string]string{"KICKMON_ON_LOG_CHANGE": "stop"}, "stop", 180 * 24 * time.Hour, ""},
		{"bad policy", map[string]string{"KICKMON_ON_LOG_CHANGE": "ignore"}, "", 0, `KICKMON_ON_LOG_CHANGE="ignore": want resync or stop`},
		{"days", map[string]string{"KICKMON_EVENTS_RETENTION": "30d"}, "resync", 30 * 24 * time.Hour, ""},
		{"hours", map[string]string{"KICKMON_EVENTS_RETENTION": "4320h"}, "resync", 180 * 24 * time.Hour, ""},
		{"keep all", map[string]string{"KICKMON_EVENTS_RETENTION": "0"}, "resync", 0, ""},
		{"not a duration", map[string]string{"KICKMON_EVENTS_RETENTION": "six months"}, "", 0, "KICKMON_EVENTS_RETENTION=\"six months\": want 0, whole days"},
		{"fractional days", map[string]string{"KICKMON_EVENTS_RETENTION": "1.5d"}, "", 0, "whole days"},
		{"negative", map[string]string{"KICKMON_EVENTS_RETENTION": "-5h"}, "", 0, "want 0"},
		{"too short", map[string]string{"KICKMON_EVENTS_RETENTION": "2h"}, "", 0, "at least 1d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{"KICKMON_DATABASE_URL": "host=/run/postgresql"}
			for k, v := range tt.env {
				m[k] = v
			}
			c, err := Load(env(m), "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.OnLogChange != tt.wantOn || c.EventsRetention != tt.wantRetention {
				t.Errorf("OnLogChange %q retention %s, want %q %s", c.OnLogChange, c.EventsRetention, tt.wantOn, tt.wantRetention)
			}
		})
	}
}

// TestEnvFileSecrets: a syntax error names the file and line only (the
// parser's own error quoted the rest of the file, password included), and
// a database URL with a password in the env file is a warning without it.
func TestEnvFileSecrets(t *testing.T) {
	const password = "pa55word-in-file"
	tests := []struct {
		name, text string
		env        map[string]string
		wantErr    string // empty: loads
		wantWarn   bool
	}{
		{"syntax error", "KICKMON_BATCH_SIZE=5\n\"oops\nKICKMON_DATABASE_URL=postgres://k:" + password + "@db/k\n", nil, "line 2: syntax error", false},
		{"password in a URL", "KICKMON_DATABASE_URL=postgres://k:" + password + "@localhost/k\n", nil, "", true},
		{"password as a query parameter", "KICKMON_DATABASE_URL=postgres://k@localhost/k?password=" + password + "\n", nil, "", true},
		{"password keyword", "KICKMON_DATABASE_URL=host=/run/postgresql password=" + password + "\n", nil, "", true},
		{"no password", "KICKMON_DATABASE_URL=postgres:///kickmon?host=/run/postgresql\n", nil, "", false},
		{"password URL from the environment", "KICKMON_BATCH_SIZE=5\n", map[string]string{"KICKMON_DATABASE_URL": "postgres://k:" + password + "@localhost/k"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "writer.env")
			if err := os.WriteFile(file, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(env(tt.env), file)
			if err != nil && strings.Contains(err.Error(), password) {
				t.Fatalf("the error quotes the password: %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), file+": "+tt.wantErr) {
					t.Fatalf("Load = %v, want an error ending %q", err, file+": "+tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var warned bool
			for _, w := range c.Warnings() {
				if strings.Contains(w, password) {
					t.Errorf("warning quotes the password: %q", w)
				}
				warned = warned || strings.Contains(w, "carries a password")
			}
			if warned != tt.wantWarn {
				t.Errorf("warnings %q: password warning %v, want %v", c.Warnings(), warned, tt.wantWarn)
			}
		})
	}
}
