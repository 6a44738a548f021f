package webhook

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
)

// DocumentedPublicKey is the key Kick documents for webhook signatures
// (KickDevDocs events/webhook-security.md, kick-api.md §1.10.5). It is the
// fallback when GET /public/v1/public-key cannot be fetched.
const DocumentedPublicKey = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq/+l1WnlRrGSolDMA+A8
6rAhMbQGmQ2SapVcGM3zq8ANXjnhDWocMqfWcTd95btDydITa10kDvHzw9WQOqp2
MZI7ZyrfzJuz5nhTPCiJwTwnEtWft7nV14BYRDHvlfqPUaZ+1KR4OCaO/wWIk/rQ
L/TjY0M70gse8rlBkbo2a8rKhu69RQTRsoaf4DVhDPEeSeI5jVrRDGAMGL3cGuyY
6CLKGdjVEM78g3JfYOvDU/RvfqD7L89TZ3iN94jrmWdGz34JNlEI5hqK8dd7C5EF
BEbZ5jgB8s8ReQV8H+MkuffjdAj3ajDDX3DOJMIut1lBrUVD1AaSrGCKHooWoL2e
twIDAQAB
-----END PUBLIC KEY-----
`

// KeySource fetches the PEM of the key that signs webhooks (the REST
// client's GET /public/v1/public-key).
type KeySource interface {
	PublicKey(ctx context.Context) (string, error)
}

// ParsePublicKey parses a PEM "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY"
// (PKCS#1) block holding an RSA key.
func ParsePublicKey(pemText string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return nil, errors.New("parse public key: no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("parse public key: %T is not an RSA key", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("parse public key: unexpected PEM type %q", block.Type)
}

var documentedKey = func() *rsa.PublicKey {
	k, err := ParsePublicKey(DocumentedPublicKey)
	if err != nil {
		panic("webhook: documented key: " + err.Error()) // a constant; tested
	}
	return k
}()

// Verify checks Kick's signature: RSA PKCS#1 v1.5 with SHA-256 over
// messageID + "." + timestamp + "." + body, base64 in Kick-Event-Signature.
func Verify(key *rsa.PublicKey, messageID, timestamp string, body []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(messageID))
	h.Write([]byte("."))
	h.Write([]byte(timestamp))
	h.Write([]byte("."))
	h.Write(body)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, h.Sum(nil), sig); err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}

// keyRefetch is the least time between two fetches of the public key.
const keyRefetch = time.Minute

// keys holds the verification key: fetched from a KeySource, or Kick's
// documented key while no fetch has succeeded.
type keys struct {
	src KeySource
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	key       *rsa.PublicKey
	fetched   bool      // key came from src
	lastFetch time.Time // last attempt
}

// get returns the current key. The first call fetches it; while only the
// documented fallback is in use, and when refresh asks for it after a failed
// verification (Kick may have rotated the key), it is fetched again, at most
// once per keyRefetch. changed reports a new key.
func (k *keys) get(ctx context.Context, refresh bool) (key *rsa.PublicKey, changed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.src == nil {
		return documentedKey, false
	}
	now := k.now()
	if k.key != nil && (k.fetched && !refresh || now.Sub(k.lastFetch) < keyRefetch) {
		return k.key, false
	}
	k.lastFetch = now
	old := k.key
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pemText, err := k.src.PublicKey(ctx)
	if err == nil {
		key, err = ParsePublicKey(pemText)
	}
	if err != nil {
		k.log.Warn("cannot fetch the webhook public key; using Kick's documented key", logkeys.Err, err)
		if k.key == nil {
			k.key = documentedKey
		}
		return k.key, old == nil
	}
	k.key, k.fetched = key, true
	return key, old == nil || !key.Equal(old)
}
