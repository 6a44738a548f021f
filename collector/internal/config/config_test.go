package config

import (
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

var base = map[string]string{"KICK_CLIENT_ID": "id", "KICK_CLIENT_SECRET": "s3cr3t-value"}

func with(extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(base), "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		ClientID: "id", ClientSecret: "s3cr3t-value",
		AuthURL: DefaultAuthURL, APIURL: DefaultAPIURL, PusherURL: DefaultPusherURL,
		Socket: DefaultSocket, StateDir: DefaultStateDir,
		PollInterval: time.Minute, OfflineGrace: 30 * time.Second, APIBudget: DefaultAPIBudget,
		ChannelsPerSocket: DefaultChannelsPerSocket, SpoolMaxBytes: 1 << 30, AdminGroup: "kickmon",
		Realtime: "auto", WebURL: "https://web.kick.com", RealtimeOrigin: "https://kick.com",
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
	}{
		{"pusher off when empty", with(map[string]string{"KICK_PUSHER_URL": ""}), func(c *Config) bool { return c.PusherURL == "" }},
		{"insecure sim urls", with(map[string]string{"KICKMON_ALLOW_INSECURE": "true", "KICK_API_URL": "http://127.0.0.1:1", "KICK_PUSHER_URL": "ws://127.0.0.1:1/app/k?protocol=7"}), func(c *Config) bool { return c.AllowInsecure && c.APIURL == "http://127.0.0.1:1" }},
		{"streamers normalised", with(map[string]string{"KICKMON_STREAMERS": " XQC, 4head,,"}), func(c *Config) bool { return cmp.Equal(c.Streamers, []string{"xqc", "4head"}) }},
		{"spool size units", with(map[string]string{"KICKMON_SPOOL_MAX_BYTES": "512MiB"}), func(c *Config) bool { return c.SpoolMaxBytes == 512<<20 }},
		{"memory limit", with(map[string]string{"KICKMON_MEMORY_LIMIT": "400MiB"}), func(c *Config) bool { return c.MemoryLimit == 400<<20 }},
		{"state dir from systemd", with(map[string]string{"STATE_DIRECTORY": "/var/lib/x"}), func(c *Config) bool { return c.StateDir == "/var/lib/x" }},
		{"log level", with(map[string]string{"KICKMON_LOG_LEVEL": "debug"}), func(c *Config) bool { return c.LogLevel.String() == "DEBUG" }},
		{"realtime settings", with(map[string]string{"KICK_REALTIME": "Centrifugo", "KICK_WEB_URL": "https://web.example", "KICK_CENTRIFUGO_URL": "wss://rt.example/connection/websocket", "KICK_REALTIME_ORIGIN": "https://kick.example"}),
			func(c *Config) bool {
				return c.Realtime == "centrifugo" && c.WebURL == "https://web.example" && c.CentrifugoURL == "wss://rt.example/connection/websocket" && c.RealtimeOrigin == "https://kick.example"
			}},
		{"no negotiation, no Origin when set empty", with(map[string]string{"KICK_WEB_URL": "", "KICK_REALTIME_ORIGIN": ""}), func(c *Config) bool { return c.WebURL == "" && c.RealtimeOrigin == "" }},
		{"realtime off", with(map[string]string{"KICK_REALTIME": "off", "KICK_PUSHER_URL": ""}), func(c *Config) bool { return c.Realtime == "off" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env), "")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

// Every problem is named in one error, and the secret never appears in it.
func TestEveryProblemListed(t *testing.T) {
	_, err := Load(env(map[string]string{
		"KICK_CLIENT_SECRET":      "s3cr3t-value",
		"KICK_API_URL":            "http://api.example",
		"KICKMON_POLL_INTERVAL":   "soon",
		"KICKMON_OFFLINE_GRACE":   "-1s",
		"KICKMON_API_BUDGET":      "0",
		"KICKMON_SPOOL_MAX_BYTES": "lots",
		"KICKMON_MEMORY_LIMIT":    "1MiB",
		"KICKMON_LOG_LEVEL":       "loud",
		"KICKMON_STREAMERS":       "ok,bad slug!",
		"KICKMON_SOCKET":          "relative.sock",
		"KICKMON_METRICS_ADDR":    "nope",
		"KICKMON_PPROF_ADDR":      "0.0.0.0:6060",
		"KICKMON_ALLOW_INSECURE":  "maybe",
		"KICK_REALTIME":           "sometimes",
		"KICK_WEB_URL":            "http://web.example",
		"KICK_CENTRIFUGO_URL":     "https://not-a-socket.example",
		"KICK_REALTIME_ORIGIN":    "kick.com",
	}), "")
	if err == nil {
		t.Fatal("Load accepted a bad configuration")
	}
	msg := err.Error()
	for _, want := range []string{"KICK_CLIENT_ID is required", "KICK_API_URL", "KICKMON_POLL_INTERVAL", "KICKMON_OFFLINE_GRACE", "KICKMON_API_BUDGET", "KICKMON_SPOOL_MAX_BYTES", "KICKMON_MEMORY_LIMIT=1048576: must be at least 32MiB", "KICKMON_LOG_LEVEL", `"bad slug!"`, "KICKMON_SOCKET", "KICKMON_METRICS_ADDR", "KICKMON_ALLOW_INSECURE", "KICK_REALTIME=", "KICK_WEB_URL", "KICK_CENTRIFUGO_URL", "KICK_REALTIME_ORIGIN", "KICKMON_PPROF_ADDR=\"0.0.0.0:6060\": profiles are served on loopback only"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("error leaks the secret:\n%s", msg)
	}
}

// A realtime mode whose provider has no URL is refused.
func TestRealtimeModeNeedsItsURL(t *testing.T) {
	for _, tt := range []struct{ env map[string]string }{
		{with(map[string]string{"KICK_REALTIME": "pusher", "KICK_PUSHER_URL": ""})},
		{with(map[string]string{"KICK_REALTIME": "centrifugo", "KICK_WEB_URL": ""})},
	} {
		if _, err := Load(env(tt.env), ""); err == nil || !strings.Contains(err.Error(), "KICK_REALTIME=") {
			t.Errorf("Load(%v) = %v; want a KICK_REALTIME problem", tt.env, err)
		}
	}
}

func TestCredentialsAndEnvFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kick-client-id"), []byte("cred-id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kick-client-secret"), []byte("cred-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "kickmon.env")
	if err := os.WriteFile(file, []byte("KICKMON_POLL_INTERVAL=5s\nKICKMON_OFFLINE_GRACE=10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"CREDENTIALS_DIRECTORY": dir, "KICKMON_OFFLINE_GRACE": "20s"}), file)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != "cred-id" || c.ClientSecret != "cred-secret" {
		t.Errorf("credentials not read: id=%q", c.ClientID)
	}
	if c.PollInterval != 5*time.Second || c.OfflineGrace != 20*time.Second {
		t.Errorf("env file / environment precedence: poll=%s grace=%s", c.PollInterval, c.OfflineGrace)
	}
	if len(c.Warnings()) == 0 {
		t.Error("a 5s poll interval should warn")
	}
	if _, err := Load(env(base), filepath.Join(dir, "missing.env")); err == nil || !strings.Contains(err.Error(), "missing.env") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GiB", 1 << 30, true}, {"512MiB", 512 << 20, true}, {"10MB", 10e6, true}, {"4096", 4096, true},
		{"0", 0, false}, {"-1GiB", 0, false}, {"GiB", 0, false}, {"1.5GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// The problem list reads the same every time (it is an operator's error
// message, and tests compare it).
func TestProblemOrderStable(t *testing.T) {
	bad := env(with(map[string]string{"KICKMON_WEBHOOK_ADDR": "nope", "KICKMON_METRICS_ADDR": "nope"}))
	_, first := Load(bad, "")
	if first == nil {
		t.Fatal("Load accepted bad addresses")
	}
	for range 20 {
		if _, err := Load(bad, ""); err == nil || err.Error() != first.Error() {
			t.Fatalf("problem list changed between loads:\n%v\n---\n%v", first, err)
		}
	}
}

// TestEnvFileSecrets: a syntax error names the file and line only (the
// parser's own error quoted the rest of the file, secret included), and a
// secret kept in the env file is a warning naming the variable only.
func TestEnvFileSecrets(t *testing.T) {
	const secretValue = "s3cr3t-in-file"
	tests := []struct {
		name, text string
		env        map[string]string
		wantErr    string // empty: loads
		wantWarn   bool
	}{
		{"syntax error", "KICK_CLIENT_ID=id\nBAD;NAME=1\nKICK_CLIENT_SECRET=" + secretValue + "\n", nil, "line 2: syntax error", false},
		{"secret in the file", "KICK_CLIENT_ID=id\nKICK_CLIENT_SECRET=" + secretValue + "\n", map[string]string{}, "", true},
		{"secret from the environment", "KICK_CLIENT_SECRET=" + secretValue + "\n", base, "", false},
		{"no secret in the file", "KICKMON_POLL_INTERVAL=30s\n", base, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "kickmon.env")
			if err := os.WriteFile(file, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(env(tt.env), file)
			if err != nil && strings.Contains(err.Error(), secretValue) {
				t.Fatalf("the error quotes the secret: %v", err)
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
				if strings.Contains(w, secretValue) {
					t.Errorf("warning quotes the secret: %q", w)
				}
				warned = warned || strings.Contains(w, "KICK_CLIENT_SECRET is set in the env file")
			}
			if warned != tt.wantWarn {
				t.Errorf("warnings %q: secret warning %v, want %v", c.Warnings(), warned, tt.wantWarn)
			}
		})
	}
}

func TestWebhookTLS(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"both", map[string]string{"KICKMON_WEBHOOK_TLS_CERT": cert, "KICKMON_WEBHOOK_TLS_KEY": cert}, ""},
		{"cert only", map[string]string{"KICKMON_WEBHOOK_TLS_CERT": cert}, "set both or neither"},
		{"missing file", map[string]string{"KICKMON_WEBHOOK_TLS_CERT": cert, "KICKMON_WEBHOOK_TLS_KEY": filepath.Join(dir, "nope.pem")}, "KICKMON_WEBHOOK_TLS_KEY="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(with(tt.env)), "")
			if tt.wantErr == "" {
				if err != nil || c.WebhookTLSCert != cert || c.WebhookTLSKey != cert {
					t.Errorf("Load = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
