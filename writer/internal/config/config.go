// Package config owns kickwriter's configuration: defaults, the environment,
// an optional env file, the systemd credential for the database URL, and
// validation that lists every problem at once.
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

	"github.com/kickmon/kickmon/proto/envfile"

	"github.com/kickmon/kickmon/proto/profiling"
)

// Defaults, as documented in design.md.
const (
	DefaultSocket        = "/run/kickmon/kickmon.sock"
	DefaultBatchInterval = 100 * time.Millisecond
	DefaultBatchSize     = 10
	// DefaultConfirmInterval is how often streamers.last_confirmed_at is
	// refreshed from the collector's watch list.
	DefaultConfirmInterval = 30 * time.Second
	// DefaultMaxBatch caps how many pending events one group commit takes.
	DefaultMaxBatch = 5000
	// Credential is the systemd credential file holding the database URL.
	Credential = "database-url"
	// DefaultEventsRetention is how long status_events rows are kept.
	DefaultEventsRetention = 180 * 24 * time.Hour
)

// KICKMON_ON_LOG_CHANGE values: what the writer does when the collector's
// event log is not the one its cursor belongs to.
const (
	OnLogChangeResync = "resync" // record a gap, follow the new log (default)
	OnLogChangeStop   = "stop"   // stop with exit status 3
)

// Config is kickwriter's whole configuration.
type Config struct {
	DatabaseURL   string // never logged: use Redact
	Socket        string
	BatchInterval time.Duration
	BatchSize     int
	MaxBatch      int
	// ConfirmInterval is how often confirmation times are refreshed.
	ConfirmInterval time.Duration
	MetricsAddr     string
	PprofAddr       string // loopback only; empty: off
	LogLevel        slog.Level
	AllowInsecure   bool
	// OnLogChange is OnLogChangeResync or OnLogChangeStop.
	OnLogChange string
	// EventsRetention is KICKMON_EVENTS_RETENTION; 0 keeps every event.
	EventsRetention time.Duration
	// NoOutbox turns off the notification outbox (KICKMON_NOTIFY_OUTBOX=false).
	NoOutbox bool

	warnings []string // see Warnings
}

// Warnings are legal but unwise settings, for the log at start; they name
// variables, never values.
func (c *Config) Warnings() []string { return c.warnings }

// hasPassword reports whether a database URL (postgres://… or key=value)
// carries a password.
func hasPassword(dsn string) bool {
	dsn = strings.TrimSpace(dsn)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Get("password") != ""
	}
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == "password" && v != "" {
			return true
		}
	}
	return false
}

// Lookup finds an environment variable; os.LookupEnv is one.
type Lookup func(key string) (string, bool)

// Error lists every configuration problem.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return fmt.Sprintf("invalid configuration (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Load builds the configuration from env (the real environment), an
// optional env file (whose values the real environment overrides) and the
// systemd credentials directory, then validates it. The error lists every
// problem and never contains the database password.
func Load(env Lookup, envFile string) (*Config, error) {
	var problems []string
	fileVals := map[string]string{}
	if envFile != "" {
		vals, err := envfile.Read(envFile)
		if err != nil {
			return nil, err
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
		Socket:          str("KICKMON_SOCKET", DefaultSocket),
		BatchInterval:   DefaultBatchInterval,
		BatchSize:       DefaultBatchSize,
		MaxBatch:        DefaultMaxBatch,
		ConfirmInterval: DefaultConfirmInterval,
		MetricsAddr:     get("KICKMON_METRICS_ADDR"),
		PprofAddr:       get("KICKMON_PPROF_ADDR"),
		OnLogChange:     str("KICKMON_ON_LOG_CHANGE", OnLogChangeResync),
		EventsRetention: DefaultEventsRetention,
	}
	duration := func(k string, dst *time.Duration) {
		if v := get(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q: not a duration (e.g. %s)", k, v, *dst))
			} else {
				*dst = d
			}
		}
	}
	duration("KICKMON_BATCH_INTERVAL", &c.BatchInterval)
	duration("KICKMON_CONFIRM_INTERVAL", &c.ConfirmInterval)
	if v := get("KICKMON_EVENTS_RETENTION"); v != "" {
		d, err := ParseRetention(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_EVENTS_RETENTION=%q: %v", v, err))
		} else {
			c.EventsRetention = d
		}
	}
	if v := get("KICKMON_BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_BATCH_SIZE=%q: want a whole number", v))
		} else {
			c.BatchSize = n
		}
	}
	if v := get("KICKMON_ALLOW_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_ALLOW_INSECURE=%q: want true or false", v))
		}
		c.AllowInsecure = b
	}
	if v := get("KICKMON_NOTIFY_OUTBOX"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_NOTIFY_OUTBOX=%q: want true or false", v))
		}
		c.NoOutbox = err == nil && !b
	}
	if err := c.LogLevel.UnmarshalText([]byte(str("KICKMON_LOG_LEVEL", "info"))); err != nil {
		problems = append(problems, fmt.Sprintf("KICKMON_LOG_LEVEL=%q: want debug, info, warn or error", get("KICKMON_LOG_LEVEL")))
	}
	url, err := databaseURL(get)
	if err != nil {
		problems = append(problems, err.Error())
	}
	c.DatabaseURL = url
	if _, inEnv := env("KICKMON_DATABASE_URL"); !inEnv && hasPassword(fileVals["KICKMON_DATABASE_URL"]) {
		c.warnings = append(c.warnings, "KICKMON_DATABASE_URL in the env file, which the kickmon group can read, carries a password: move it to the systemd credential "+Credential+" (README: Deployment)")
	}

	if err := c.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			problems = append(problems, ce.Problems...)
		}
	}
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

// Validate checks a configuration and lists every problem in one *Error.
// An empty DatabaseURL is left to Load, which knows where it looked.
func (c *Config) Validate() error {
	var p []string
	if c.DatabaseURL != "" {
		if err := CheckDatabaseURL(c.DatabaseURL, c.AllowInsecure); err != nil {
			p = append(p, "KICKMON_DATABASE_URL: "+err.Error())
		}
	}
	if !filepath.IsAbs(c.Socket) {
		p = append(p, fmt.Sprintf("KICKMON_SOCKET=%q: must be an absolute path", c.Socket))
	} else if len(c.Socket) > 107 {
		p = append(p, fmt.Sprintf("KICKMON_SOCKET=%q: longer than a Unix socket path may be (107 bytes)", c.Socket))
	}
	if c.BatchInterval <= 0 || c.BatchInterval > time.Minute {
		p = append(p, fmt.Sprintf("KICKMON_BATCH_INTERVAL=%s: must be above 0 and at most 1m", c.BatchInterval))
	}
	if c.ConfirmInterval < time.Second || c.ConfirmInterval > time.Hour {
		p = append(p, fmt.Sprintf("KICKMON_CONFIRM_INTERVAL=%s: must be at least 1s and at most 1h", c.ConfirmInterval))
	}
	if c.BatchSize < 1 || c.BatchSize > c.MaxBatch {
		p = append(p, fmt.Sprintf("KICKMON_BATCH_SIZE=%d: must be between 1 and %d", c.BatchSize, c.MaxBatch))
	}
	if c.OnLogChange != OnLogChangeResync && c.OnLogChange != OnLogChangeStop {
		p = append(p, fmt.Sprintf("KICKMON_ON_LOG_CHANGE=%q: want %s or %s", c.OnLogChange, OnLogChangeResync, OnLogChangeStop))
	}
	if c.EventsRetention != 0 && c.EventsRetention < 24*time.Hour {
		p = append(p, fmt.Sprintf("KICKMON_EVENTS_RETENTION=%s: must be 0 (keep all) or at least 1d", c.EventsRetention))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			p = append(p, fmt.Sprintf("KICKMON_METRICS_ADDR=%q: want host:port", c.MetricsAddr))
		}
	}
	if err := profiling.CheckAddr("KICKMON_PPROF_ADDR", c.PprofAddr); err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// ParseRetention reads KICKMON_EVENTS_RETENTION: "0" (keep all), whole
// days ("180d") or a Go duration ("4320h").
func ParseRetention(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, errors.New("want 0, whole days (180d) or a duration (4320h)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want 0, whole days (180d) or a duration (4320h)")
	}
	return d, nil
}
