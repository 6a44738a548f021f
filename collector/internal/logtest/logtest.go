// Package logtest gives tests a *slog.Logger that writes to t.Log, so a
// component's logs show up under the test that produced them (and only when
// it fails or runs with -v).
package logtest

import (
	"log/slog"
	"strings"
	"testing"
)

// New returns a debug-level text logger writing to t.Log.
func New(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
