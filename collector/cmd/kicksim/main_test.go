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

func TestRunPrintsEnvAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	env := map[string]string{"KICKSIM_CLIENT_ID": "id1", "KICKSIM_CLIENT_SECRET": "s1"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--streamers", "3", "--listen", "127.0.0.1:0", "--rate", "5"}, func(k string) string { return env[k] }, &out, io.Discard)
	}()
	deadline := time.Now().Add(5 * time.Second)
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
	for _, want := range []string{"KICK_AUTH_URL=http://127.0.0.1:", "KICK_API_URL=http://127.0.0.1:", "KICK_PUSHER_URL='ws://127.0.0.1:",
		"/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false'\n", "KICK_CLIENT_ID=id1\n", "KICK_CLIENT_SECRET=s1\n",
		"KICKMON_ALLOW_INSECURE=true\n", "KICKSIM_CONTROL_URL=http://127.0.0.1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
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
