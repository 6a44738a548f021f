package envfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const secret = "s3cr3t-client-secret"

func TestRead(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
		wantLine   int // 0: parses
	}{
		{"plain", "# c\nA=1\nexport B=\"two words\"\n", map[string]string{"A": "1", "B": "two words"}, 0},
		{"multi-line value", "A=\"x\ny\"\nB=2\n", map[string]string{"A": "x\ny", "B": "2"}, 0},
		{"bad name", "A=1\nB;C=2\nKICK_CLIENT_SECRET=" + secret + "\n", nil, 2},
		{"unterminated quote", "A=1\n\nB=\"open\nKICK_CLIENT_SECRET=" + secret + "\n", nil, 3},
		{"bad name after a multi-line value", "A=\"x\ny\"\nB=2\n%%=" + secret + "\n", nil, 4},
		{"first line", "-X=" + secret + "\n", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kickmon.env")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if tt.wantLine == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("values (-want +got):\n%s", diff)
				}
				return
			}
			want := path + ": line " + string(rune('0'+tt.wantLine)) + ": syntax error"
			if err == nil || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("Read = %v, want an error ending %q", err, want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
}
