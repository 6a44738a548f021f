package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runUntilEnv runs kicksim until it has printed its environment, then stops it.
func runUntilEnv(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	env := map[string]string{"KICKSIM_CLIENT_ID": "id1", "KICKSIM_CLIENT_SECRET": "s1"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "KICKMON_STREAMERS=") {
		if time.Now().After(deadline) {
			t.Fatalf("no env printed: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String()
}

// A world too large for one variable still ends with the line readers wait for.
func TestRunLargeWorldEndsWithStreamersLine(t *testing.T) {
	out := runUntilEnv(t, "--streamers", "20000")
	if !strings.HasSuffix(out, "KICKMON_STREAMERS=\n") || !strings.Contains(out, "add streamers with kickctl") {
		t.Errorf("output of a 20000-streamer world ends %q", out[max(0, len(out)-200):])
	}
}

func TestRunPrintsEnvAndStops(t *testing.T) {
	out := runUntilEnv(t, "--streamers", "3", "--rate", "5")
	for _, want := range []string{"KICK_AUTH_URL=http://127.0.0.1:", "KICK_API_URL=http://127.0.0.1:", "KICK_PUSHER_URL='ws://127.0.0.1:",
		"/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false'\n", "KICK_CLIENT_ID=id1\n", "KICK_CLIENT_SECRET=s1\n",
		"KICKMON_ALLOW_INSECURE=true\n", "KICKSIM_CONTROL_URL=http://127.0.0.1:",
		"KICK_WEB_URL=http://127.0.0.1:", "/connection/websocket\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--streamers", "0"},
		{"--listen", "256.0.0.1:1"},
		{"--log-level", "loud"},
		{"extra"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	if err := run(context.Background(), nil, func(k string) string {
		if k == "KICKSIM_CLIENT_ID" {
			return "only-id"
		}
		return ""
	}, io.Discard, io.Discard); err == nil {
		t.Error("half credentials accepted")
	}
}
