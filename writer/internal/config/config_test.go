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
		"KICKMON_LOG_LEVEL":        "loud",
		"KICKMON_SOCKET":           "relative.sock",
		"KICKMON_METRICS_ADDR":     "9100",
	}), "")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	for _, want := range []string{"KICKMON_BATCH_INTERVAL", "KICKMON_BATCH_SIZE", "KICKMON_CONFIRM_INTERVAL", "KICKMON_ALLOW_INSECURE", "KICKMON_LOG_LEVEL", "KICKMON_SOCKET", "KICKMON_METRICS_ADDR", "KICKMON_DATABASE_URL is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if len(ce.Problems) != 8 {
		t.Errorf("%d problems, want 8:\n%v", len(ce.Problems), err)
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
		dsn      string
		insecure bool
		wantErr  string
	}{
		{"host=/run/postgresql dbname=kickmon", false, ""},
		{"postgres://kickmon:s3cret@localhost/kickmon", false, ""},
		{"postgres://kickmon:s3cret@127.0.0.1:5432/kickmon?sslmode=disable", false, ""},
		{"postgres://kickmon:s3cret@db.example.com/kickmon?sslmode=require", false, ""},
		{"postgres://kickmon:s3cret@db.example.com/kickmon", false, "without mandatory TLS"},
		{"host=db.example.com password=s3cret sslmode=disable", false, "without mandatory TLS"},
		{"host=db.example.com password=s3cret sslmode=disable", true, ""},
		{"postgres://kickmon:s3cret@db.example.com:notaport/kickmon", false, "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			err := CheckDatabaseURL(tt.dsn, tt.insecure)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("error leaks the password: %v", err)
			}
		})
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
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact = %q, want %q", got, tt.want)
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
