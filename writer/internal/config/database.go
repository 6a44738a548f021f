package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CheckDatabaseURL parses a pgx DSN (URL or keyword/value) and refuses,
// unless allowInsecure, any remote host it may connect to (the first host
// and every fallback: `host=a,b`, `postgres://a,b/…`, and the plain-text
// retries sslmode=prefer and allow add) without sslmode=verify-full: with
// require, prefer or allow the server's certificate is not checked, and
// with verify-ca not its name, so anyone on the path can stand in for the
// database and read the password. Local means a Unix socket or a loopback
// host. Errors never include a password (any *password parameter).
func CheckDatabaseURL(dsn string, allowInsecure bool) error {
	weak, err := InsecureDatabaseHosts(dsn)
	if err != nil {
		return err
	}
	if len(weak) > 0 && !allowInsecure {
		return fmt.Errorf("%s: %s; use sslmode=verify-full (with sslrootcert=FILE for a private CA), a Unix socket, or set KICKMON_ALLOW_INSECURE=true",
			Redact(dsn), strings.Join(weak, "; "))
	}
	return nil
}

// InsecureDatabaseHosts lists, one phrase per remote host, how dsn would
// reach it without a verified TLS connection; empty when every remote
// host needs sslmode=verify-full. kickwriter logs them as warnings when
// KICKMON_ALLOW_INSECURE accepts them.
func InsecureDatabaseHosts(dsn string) ([]string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s: %s", Redact(dsn), scrub(err.Error(), dsn))
	}
	type attempt struct {
		host string
		tls  *tls.Config
	}
	attempts := []attempt{{cfg.Host, cfg.TLSConfig}}
	for _, fb := range cfg.Fallbacks {
		attempts = append(attempts, attempt{fb.Host, fb.TLSConfig})
	}
	// Per host, the weakest way it may be reached (prefer tries TLS, then
	// plain text: plain text is what an attacker on the path gets).
	worst := map[string]int{}
	var hosts []string
	for _, a := range attempts {
		if isLocal(a.host) {
			continue
		}
		level := 0 // verify-full
		switch {
		case a.tls == nil:
			level = 3
		case a.tls.InsecureSkipVerify && a.tls.VerifyPeerCertificate == nil:
			level = 2
		case a.tls.InsecureSkipVerify:
			level = 1
		}
		if _, ok := worst[a.host]; !ok {
			hosts = append(hosts, a.host)
		}
		worst[a.host] = max(worst[a.host], level)
	}
	how := []string{"",
		"with TLS that checks the certificate's CA but not its host name (sslmode=verify-ca)",
		"with TLS that checks no certificate (sslmode=require)",
		"without TLS (sslmode disable, allow or prefer)"}
	var weak []string
	for _, h := range hosts {
		if l := worst[h]; l > 0 {
			weak = append(weak, fmt.Sprintf("remote host %q is reached %s", h, how[l]))
		}
	}
	return weak, nil
}

func isLocal(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
