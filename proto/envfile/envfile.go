// Package envfile reads the daemons' optional env file (--env-file) without
// ever quoting it: the file holds secrets, and the parser's own errors
// repeat the rest of the file. A syntax error is reported as the file, the
// line and "syntax error", nothing more.
package envfile

import (
	"bytes"
	"fmt"
	"os"

	"github.com/joho/godotenv"
)

// Read parses the env file at path (KEY=VALUE lines, comments, quoted and
// multi-line values, as systemd's EnvironmentFile and godotenv accept).
func Read(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	vals, err := godotenv.UnmarshalBytes(b)
	if err != nil {
		return nil, fmt.Errorf("env file %s: line %d: syntax error", path, errorLine(b))
	}
	return vals, nil
}

// errorLine finds the line of the first syntax error: the parser stops at
// the first bad statement, so every prefix of the file that ends before
// that line parses, and none that includes it does. (A prefix that cuts a
// multi-line value fails too, but a longer one that closes it parses, so
// the last prefix that parses is the one to trust.)
func errorLine(b []byte) int {
	lines := bytes.SplitAfter(b, []byte("\n"))
	for k := len(lines) - 1; k > 0; k-- {
		if _, err := godotenv.UnmarshalBytes(bytes.Join(lines[:k], nil)); err == nil {
			return k + 1
		}
	}
	return 1
}
