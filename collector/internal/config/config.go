// Package config owns kickcollector's configuration: defaults, the
// environment, an optional env file, systemd credentials, and validation
// that lists every problem at once.
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

	"github.com/kickmon/kickmon/collector/internal/kickrest"
	"github.com/kickmon/kickmon/collector/internal/poller"
	"github.com/kickmon/kickmon/collector/internal/pusher"
	"github.com/kickmon/kickmon/collector/internal/realtime"
	"github.com/kickmon/kickmon/proto/envfile"
	"github.com/kickmon/kickmon/proto/profiling"
)

// Defaults, as documented in design.md.
const (
	DefaultAuthURL           = kickrest.DefaultAuthURL
	DefaultAPIURL            = kickrest.DefaultAPIURL
	DefaultPusherURL         = pusher.DefaultURL
	DefaultRealtime          = realtime.ModeAuto
	DefaultWebURL            = realtime.DefaultWebURL
	DefaultRealtimeOrigin    = realtime.DefaultOrigin
	DefaultSocket            = "/run/kickmon/kickmon.sock"
	DefaultStateDir          = "/var/lib/kickmon"
	DefaultPollInterval      = 60 * time.Second
	DefaultOfflineGrace      = 30 * time.Second
	DefaultAPIBudget         = kickrest.DefaultBudget
	DefaultChannelsPerSocket = pusher.DefaultChannelsPerSocket
	DefaultSpoolMaxBytes     = 1 << 30
	DefaultAdminGroup        = "kickmon"
	MinPollInterval          = time.Second
	MinMemoryLimit           = 32 << 20
	WarnPollInterval         = 10 * time.Second
)

// Config is kickcollector's whole configuration.
type Config struct {
	ClientID     string
	ClientSecret string // never logged or printed

	AuthURL   string
	APIURL    string
	PusherURL string // empty: Pusher off

	// Realtime is KICK_REALTIME: auto, pusher, centrifugo or off.
	Realtime string
	// WebURL is KICK_WEB_URL, where the realtime provider is negotiated
	// (empty: no negotiation, the fallback URLs only).
	WebURL string
	// CentrifugoURL is KICK_CENTRIFUGO_URL, the Centrifugo fallback (empty: none).
	CentrifugoURL string
	// RealtimeOrigin is KICK_REALTIME_ORIGIN, the Origin sent to the
	// negotiation endpoints and Centrifugo (empty: none).
	RealtimeOrigin string

	AllowInsecure bool
	Socket        string
	StateDir      string
	Streamers     []string

	PollInterval      time.Duration
	OfflineGrace      time.Duration
	APIBudget         int
	ChannelsPerSocket int
	WebhookAddr       string
	// WebhookTLSCert and WebhookTLSKey make the webhook receiver serve
	// HTTPS itself (both or neither).
	WebhookTLSCert, WebhookTLSKey string
	SpoolMaxBytes                 int64
	// MemoryLimit is the Go runtime's soft memory limit
	// (debug.SetMemoryLimit); 0 leaves the runtime's (GOMEMLIMIT, else none).
	MemoryLimit int64
	AdminGroup  string
	MetricsAddr string
	PprofAddr   string // loopback only; empty: off
	LogLevel    slog.Level

	// secretInFile names a secret read from the env file (for a warning).
	secretInFile string
}

// SpoolPath is the spool file inside the state directory.
func (c *Config) SpoolPath() string { return filepath.Join(c.StateDir, "spool.db") }

// Lookup finds an environment variable; os.LookupEnv is one.
type Lookup func(key string) (string, bool)

// Load builds the configuration from env (real environment), an optional
// env file (whose values the real environment overrides) and the systemd
// credentials directory, then validates it. The error lists every problem.
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
	get := func(k string) (string, bool) {
		if v, ok := env(k); ok {
			return v, true
		}
		v, ok := fileVals[k]
		return v, ok
	}
	str := func(k, def string) string {
		if v, ok := get(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	dur := func(k string, def time.Duration) time.Duration {
		v := str(k, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: not a duration (e.g. 30s, 1m)", k, v))
			return def
		}
		return d
	}
	integer := func(k string, def int) int {
		v := str(k, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			problems = append(problems, fmt.Sprintf("%s=%q: want a positive whole number", k, v))
			return def
		}
		return n
	}

	c := &Config{
		AuthURL:           str("KICK_AUTH_URL", DefaultAuthURL),
		APIURL:            str("KICK_API_URL", DefaultAPIURL),
		Socket:            str("KICKMON_SOCKET", DefaultSocket),
		StateDir:          str("KICKMON_STATE_DIR", str("STATE_DIRECTORY", DefaultStateDir)),
		PollInterval:      dur("KICKMON_POLL_INTERVAL", DefaultPollInterval),
		OfflineGrace:      dur("KICKMON_OFFLINE_GRACE", DefaultOfflineGrace),
		APIBudget:         integer("KICKMON_API_BUDGET", DefaultAPIBudget),
		ChannelsPerSocket: integer("KICKMON_PUSHER_CHANNELS_PER_SOCKET", DefaultChannelsPerSocket),
		WebhookAddr:       str("KICKMON_WEBHOOK_ADDR", ""),
		WebhookTLSCert:    str("KICKMON_WEBHOOK_TLS_CERT", ""),
		WebhookTLSKey:     str("KICKMON_WEBHOOK_TLS_KEY", ""),
		AdminGroup:        str("KICKMON_ADMIN_GROUP", DefaultAdminGroup),
		MetricsAddr:       str("KICKMON_METRICS_ADDR", ""),
		PprofAddr:         str("KICKMON_PPROF_ADDR", ""),
		SpoolMaxBytes:     DefaultSpoolMaxBytes,
	}
	// Unset means the default; set to the empty string means off (Pusher),
	// no negotiation (web URL), no Origin header.
	orEmpty := func(k, def string) string {
		if v, ok := get(k); ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	c.PusherURL = orEmpty("KICK_PUSHER_URL", DefaultPusherURL)
	c.WebURL = orEmpty("KICK_WEB_URL", DefaultWebURL)
	c.RealtimeOrigin = orEmpty("KICK_REALTIME_ORIGIN", DefaultRealtimeOrigin)
	c.CentrifugoURL = str("KICK_CENTRIFUGO_URL", "")
	c.Realtime = strings.ToLower(str("KICK_REALTIME", DefaultRealtime))
	if v := str("KICKMON_ALLOW_INSECURE", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_ALLOW_INSECURE=%q: want true or false", v))
		}
		c.AllowInsecure = b
	}
	if v := str("KICKMON_SPOOL_MAX_BYTES", ""); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_SPOOL_MAX_BYTES=%q: %v", v, err))
		} else {
			c.SpoolMaxBytes = n
		}
	}
	if v := str("KICKMON_MEMORY_LIMIT", ""); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_MEMORY_LIMIT=%q: %v", v, err))
		} else {
			c.MemoryLimit = n
		}
	}
	if v := str("KICKMON_LOG_LEVEL", "info"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			problems = append(problems, fmt.Sprintf("KICKMON_LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	if v := str("KICKMON_STREAMERS", ""); v != "" {
		for _, s := range strings.Split(v, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			n, err := poller.NormalizeSlug(s)
			if err != nil {
				problems = append(problems, "KICKMON_STREAMERS: "+err.Error())
				continue
			}
			c.Streamers = append(c.Streamers, n)
		}
	}

	var err error
	c.ClientID, err = secret(get, "KICK_CLIENT_ID", "kick-client-id")
	if err != nil {
		problems = append(problems, err.Error())
	}
	c.ClientSecret, err = secret(get, "KICK_CLIENT_SECRET", "kick-client-secret")
	if err != nil {
		problems = append(problems, err.Error())
	}

	if _, inEnv := env("KICK_CLIENT_SECRET"); !inEnv && strings.TrimSpace(fileVals["KICK_CLIENT_SECRET"]) != "" {
		c.secretInFile = "KICK_CLIENT_SECRET"
	}

	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// Error lists every configuration problem.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return fmt.Sprintf("invalid configuration (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// secret reads a secret from the environment, else from the systemd
// credentials directory. Only the variable's name reaches an error.
func secret(get Lookup, key, credential string) (string, error) {
	if v, ok := get(key); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), nil
	}
	if dir, ok := get("CREDENTIALS_DIRECTORY"); ok && dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, credential))
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b)), nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: read credential %s: %v", key, credential, errors.Unwrap(err))
		}
	}
	return "", fmt.Errorf("%s is required (or the systemd credential %s)", key, credential)
}

func (c *Config) validate() []string {
	var p []string
	checkURL := func(name, v string, schemes ...string) {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			p = append(p, fmt.Sprintf("%s=%q: not an absolute URL", name, v))
			return
		}
		secure := schemes[0]
		for _, s := range schemes {
			if u.Scheme == s {
				if s != secure && !c.AllowInsecure {
					p = append(p, fmt.Sprintf("%s=%q: %s is refused without KICKMON_ALLOW_INSECURE=true", name, v, s))
				}
				return
			}
		}
		p = append(p, fmt.Sprintf("%s=%q: scheme must be one of %s", name, v, strings.Join(schemes, ", ")))
	}
	checkURL("KICK_AUTH_URL", c.AuthURL, "https", "http")
	checkURL("KICK_API_URL", c.APIURL, "https", "http")
	if c.PusherURL != "" {
		checkURL("KICK_PUSHER_URL", c.PusherURL, "wss", "ws")
	}
	if c.WebURL != "" {
		checkURL("KICK_WEB_URL", c.WebURL, "https", "http")
	}
	if c.CentrifugoURL != "" {
		checkURL("KICK_CENTRIFUGO_URL", c.CentrifugoURL, "wss", "ws")
	}
	if o := c.RealtimeOrigin; o != "" {
		if u, err := url.Parse(o); err != nil || u.Host == "" || u.Scheme == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			p = append(p, fmt.Sprintf("KICK_REALTIME_ORIGIN=%q: want an origin such as https://kick.com (or empty for none)", o))
		}
	}
	switch c.Realtime {
	case realtime.ModeAuto, realtime.ModeCentrifugo, realtime.ModeOff:
		if c.Realtime == realtime.ModeCentrifugo && c.WebURL == "" && c.CentrifugoURL == "" {
			p = append(p, "KICK_REALTIME=centrifugo: needs KICK_WEB_URL (negotiation) or KICK_CENTRIFUGO_URL")
		}
	case realtime.ModePusher:
		if c.PusherURL == "" {
			p = append(p, "KICK_REALTIME=pusher: KICK_PUSHER_URL is empty (Pusher off)")
		}
	default:
		p = append(p, fmt.Sprintf("KICK_REALTIME=%q: want one of %s", c.Realtime, strings.Join(realtime.Modes, ", ")))
	}
	if c.PollInterval < MinPollInterval {
		p = append(p, fmt.Sprintf("KICKMON_POLL_INTERVAL=%s: must be at least %s", c.PollInterval, MinPollInterval))
	}
	if c.OfflineGrace <= 0 {
		p = append(p, fmt.Sprintf("KICKMON_OFFLINE_GRACE=%s: must be positive", c.OfflineGrace))
	}
	if c.SpoolMaxBytes < 1<<20 {
		p = append(p, fmt.Sprintf("KICKMON_SPOOL_MAX_BYTES=%d: must be at least 1MiB", c.SpoolMaxBytes))
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < MinMemoryLimit {
		p = append(p, fmt.Sprintf("KICKMON_MEMORY_LIMIT=%d: must be at least 32MiB (a smaller heap would be collected all the time)", c.MemoryLimit))
	}
	if !filepath.IsAbs(c.Socket) {
		p = append(p, fmt.Sprintf("KICKMON_SOCKET=%q: must be an absolute path", c.Socket))
	} else if len(c.Socket) > 107 {
		p = append(p, fmt.Sprintf("KICKMON_SOCKET=%q: longer than a Unix socket path may be (107 bytes)", c.Socket))
	}
	if !filepath.IsAbs(c.StateDir) {
		p = append(p, fmt.Sprintf("KICKMON_STATE_DIR=%q: must be an absolute path", c.StateDir))
	}
	if (c.WebhookTLSCert == "") != (c.WebhookTLSKey == "") {
		p = append(p, "KICKMON_WEBHOOK_TLS_CERT and KICKMON_WEBHOOK_TLS_KEY: set both or neither")
	}
	for _, f := range []struct{ name, path string }{{"KICKMON_WEBHOOK_TLS_CERT", c.WebhookTLSCert}, {"KICKMON_WEBHOOK_TLS_KEY", c.WebhookTLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p = append(p, fmt.Sprintf("%s=%q: %v", f.name, f.path, errors.Unwrap(err)))
		}
	}
	for _, a := range []struct{ name, addr string }{{"KICKMON_WEBHOOK_ADDR", c.WebhookAddr}, {"KICKMON_METRICS_ADDR", c.MetricsAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			p = append(p, fmt.Sprintf("%s=%q: want host:port", a.name, a.addr))
		}
	}
	if err := profiling.CheckAddr("KICKMON_PPROF_ADDR", c.PprofAddr); err != nil {
		p = append(p, err.Error())
	}
	return p
}

// Warnings are legal but unwise settings, for the log at start.
func (c *Config) Warnings() []string {
	var w []string
	if c.PollInterval < WarnPollInterval {
		w = append(w, fmt.Sprintf("KICKMON_POLL_INTERVAL=%s is below %s: meant for tests; Kick refreshes viewer counts about once a minute", c.PollInterval, WarnPollInterval))
	}
	if c.AllowInsecure {
		w = append(w, "KICKMON_ALLOW_INSECURE=true: plain http/ws endpoints are accepted")
	}
	if c.secretInFile != "" {
		w = append(w, c.secretInFile+" is set in the env file, which the kickmon group can read: move it to the systemd credential kick-client-secret (README: Deployment)")
	}
	return w
}

// ParseSize parses a byte size such as 1073741824, 512MiB, 1GiB or 10MB.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive size such as 1GiB, 512MiB or a number of bytes")
	}
	if n > (1<<62)/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}
