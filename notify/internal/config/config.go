// Package config owns kicknotify's configuration: the environment (with an
// optional env file and systemd credentials) and the targets file
// notify.yaml, validated at start with every problem listed at once.
// Target URLs and secrets are loaded here and never appear in errors.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Defaults, as documented in README.md.
const (
	DefaultConfigPath = "/etc/kickmon/notify.yaml"
	DefaultSocket     = "/run/kickmon-notify/notify.sock"
	DefaultTimeout    = 30 * time.Second
	// Credential is the systemd credential file holding the database URL.
	Credential = "database-url"
)

// Config is kicknotify's whole configuration.
type Config struct {
	DatabaseURL   string // never logged: use Redact
	ConfigPath    string
	Socket        string
	MetricsAddr   string
	LogLevel      slog.Level
	AllowInsecure bool
	// Timeout bounds one delivery attempt; a job still running after
	// twice that (kicknotify died mid-delivery) is retried.
	Timeout time.Duration
	// Targets is notify.yaml, loaded and validated.
	Targets []*Target
}

// Lookup finds an environment variable; os.LookupEnv is one.
type Lookup func(key string) (string, bool)

// Error lists every configuration problem.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return fmt.Sprintf("invalid configuration (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Load builds the configuration from env (the real environment), an
// optional env file (whose values the real environment overrides), the
// systemd credentials directory and the targets file, then validates it.
func Load(env Lookup, envFile string) (*Config, error) {
	var problems []string
	fileVals := map[string]string{}
	if envFile != "" {
		vals, err := godotenv.Read(envFile)
		if err != nil {
			return nil, fmt.Errorf("read env file %s: %w", envFile, err)
		}
		fileVals = vals
	}
	get := func(k string) string {
		if v, ok := env(k); ok {
			return strings.TrimSpace(v)
		}
		return strings.TrimSpace(fileVals[k])
	}
	str := func(k, def string) string {
		if v := get(k); v != "" {
			return v
		}
		return def
	}
	c := &Config{
		ConfigPath:  str("KICKMON_NOTIFY_CONFIG", DefaultConfigPath),
		Socket:      str("KICKMON_NOTIFY_SOCKET", DefaultSocket),
		MetricsAddr: get("KICKMON_METRICS_ADDR"),
		Timeout:     DefaultTimeout,
	}
	if v := get("KICKMON_NOTIFY_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 5*time.Minute {
			problems = append(problems, fmt.Sprintf("KICKMON_NOTIFY_TIMEOUT=%q: want a duration from 1s to 5m", v))
		} else {
			c.Timeout = d
		}
	}
	if v := get("KICKMON_ALLOW_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_ALLOW_INSECURE=%q: want true or false", v))
		}
		c.AllowInsecure = b
	}
	if err := c.LogLevel.UnmarshalText([]byte(str("KICKMON_LOG_LEVEL", "info"))); err != nil {
		problems = append(problems, fmt.Sprintf("KICKMON_LOG_LEVEL=%q: want debug, info, warn or error", get("KICKMON_LOG_LEVEL")))
	}
	dsn, err := databaseURL(get)
	if err != nil {
		problems = append(problems, err.Error())
	} else if _, err := url.Parse(dsn); err != nil && strings.Contains(dsn, "://") {
		problems = append(problems, "KICKMON_DATABASE_URL: cannot parse "+Redact(dsn))
	}
	c.DatabaseURL = dsn
	if !filepath.IsAbs(c.Socket) {
		problems = append(problems, fmt.Sprintf("KICKMON_NOTIFY_SOCKET=%q: must be an absolute path", c.Socket))
	} else if len(c.Socket) > 107 {
		problems = append(problems, fmt.Sprintf("KICKMON_NOTIFY_SOCKET=%q: longer than a Unix socket path may be (107 bytes)", c.Socket))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_METRICS_ADDR=%q: want host:port", c.MetricsAddr))
		}
	}
	targets, err := LoadTargets(c.ConfigPath, c.AllowInsecure, get("CREDENTIALS_DIRECTORY"))
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			problems = append(problems, ce.Problems...)
		} else {
			problems = append(problems, err.Error())
		}
	}
	c.Targets = targets
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// databaseURL reads KICKMON_DATABASE_URL, else the systemd credential.
func databaseURL(get func(string) string) (string, error) {
	if v := get("KICKMON_DATABASE_URL"); v != "" {
		return v, nil
	}
	if dir := get("CREDENTIALS_DIRECTORY"); dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, Credential))
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b)), nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("KICKMON_DATABASE_URL: read credential %s: %v", Credential, errors.Unwrap(err))
		}
	}
	return "", fmt.Errorf("KICKMON_DATABASE_URL is required (or the systemd credential %s)", Credential)
}

// Redact returns a database URL fit for logs: the password replaced by
// xxxxx (key=value DSNs are reduced to their host).
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	for f := range strings.FieldsSeq(dsn) {
		if h, ok := strings.CutPrefix(f, "host="); ok {
			return "host=" + h
		}
	}
	return "(database)"
}
