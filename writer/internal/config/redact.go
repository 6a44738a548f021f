package config

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a password wherever a DSN is shown.
const redacted = "xxxxx"

// kvPassword matches password=... in a key=value DSN, quoted or not.
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns dsn with any password replaced, for logs and errors. It
// handles URL DSNs (postgres://user:pass@host/db?password=…) and key=value
// DSNs (host=… password=…).
func Redact(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable database URL)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", redacted)
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}"+redacted)
}
