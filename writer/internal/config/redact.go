package config

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a password wherever a DSN is shown.
const redacted = "xxxxx"

var (
	// kvSecret matches a *password=… pair (password, sslpassword, …) of a
	// keyword/value DSN, its value quoted or not.
	kvSecret = regexp.MustCompile(`(?i)(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	// urlUserinfo matches the password of a URL DSN's user info; the user
	// info ends at the last @ before the path (a password may hold @).
	urlUserinfo = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/?#]*:)([^/?#]*)@`)
	// urlSecret matches a *password=… query parameter of a URL DSN.
	urlSecret = regexp.MustCompile(`(?i)([?&][^=&#]*password=)([^&#]*)`)
)

// Redact returns dsn with every password (the URL's user info and any
// *password parameter, such as sslpassword) replaced, for logs and errors.
// It handles URL DSNs (postgres://user:pass@host1,host2/db?sslpassword=…)
// and keyword/value DSNs (host=… password=…), without parsing them, so a
// DSN too broken to parse is still redacted.
func Redact(dsn string) string {
	if isURL(dsn) {
		out := urlUserinfo.ReplaceAllString(dsn, "${1}"+redacted+"@")
		return urlSecret.ReplaceAllString(out, "${1}"+redacted)
	}
	return kvSecret.ReplaceAllString(dsn, "${1}"+redacted)
}

func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// secrets returns the password values in dsn, as written and decoded.
func secrets(dsn string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		if u, err := url.QueryUnescape(v); err == nil && u != v {
			out = append(out, u)
		}
		if u, err := url.PathUnescape(v); err == nil && u != v {
			out = append(out, u)
		}
	}
	if isURL(dsn) {
		if m := urlUserinfo.FindStringSubmatch(dsn); m != nil {
			add(m[2])
		}
		for _, m := range urlSecret.FindAllStringSubmatch(dsn, -1) {
			add(m[2])
		}
		return out
	}
	for _, m := range kvSecret.FindAllStringSubmatch(dsn, -1) {
		v := m[2]
		if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2 {
			add(strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(v[1 : len(v)-1]))
		}
		add(v)
	}
	return out
}

// scrub removes dsn and every password in it from msg (a parser's error
// may quote either, partly redacted its own way).
func scrub(msg, dsn string) string {
	msg = strings.ReplaceAll(msg, dsn, Redact(dsn))
	for _, s := range secrets(dsn) {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return msg
}
