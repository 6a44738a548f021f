package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The printed lines survive a shell: sourcing them yields the exact values.
func TestShellQuote(t *testing.T) {
	tests := []struct{ line, want string }{
		{"KICK_API_URL=http://127.0.0.1:1", "KICK_API_URL=http://127.0.0.1:1"},
		{"KICK_PUSHER_URL=ws://h/app/k?protocol=7&client=js", "KICK_PUSHER_URL='ws://h/app/k?protocol=7&client=js'"},
		{"X=it's", `X='it'\''s'`},
	}
	for _, tt := range tests {
		got := shellQuote(tt.line)
		if got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.line, got, tt.want)
		}
		_, v, _ := strings.Cut(tt.line, "=")
		out, err := exec.Command("sh", "-c", got+"; printf %s \"$"+strings.SplitN(tt.line, "=", 2)[0]+"\"").Output()
		if err != nil || string(out) != v {
			t.Errorf("sh read %q back as %q (%v), want %q", got, out, err, v)
		}
	}
}
