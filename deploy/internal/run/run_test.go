package run

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Settings: the environment wins over .env, a missing .env is fine, a broken
// one is an error naming it, and missing credentials explain themselves.
func TestSettings(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	if err := os.WriteFile(good, []byte("KICK_CLIENT_ID=file-id\nKICK_CLIENT_SECRET='file secret'\nKICKMON_STREAMERS=a,b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("KICK_CLIENT_ID='unterminated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		file    string
		environ []string
		want    map[string]string
		wantErr string
	}{
		{name: "file only", file: good,
			want: map[string]string{"KICK_CLIENT_ID": "file-id", "KICK_CLIENT_SECRET": "file secret", "KICKMON_STREAMERS": "a,b"}},
		{name: "environment wins", file: good, environ: []string{"KICK_CLIENT_ID=env-id", "KICKMON_STREAMERS=c"},
			want: map[string]string{"KICK_CLIENT_ID": "env-id", "KICK_CLIENT_SECRET": "file secret", "KICKMON_STREAMERS": "c"}},
		{name: "no file, environment only", file: filepath.Join(dir, "missing.env"), environ: []string{"KICK_CLIENT_ID=i", "KICK_CLIENT_SECRET=s"},
			want: map[string]string{"KICK_CLIENT_ID": "i", "KICK_CLIENT_SECRET": "s"}},
		{name: "blank secret", file: good, environ: []string{"KICK_CLIENT_SECRET= "}, wantErr: ErrNoCredentials.Error()},
		{name: "nothing", file: filepath.Join(dir, "missing.env"), wantErr: ErrNoCredentials.Error()},
		{name: "broken file", file: bad, wantErr: bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := Settings(Options{EnvFile: tc.file, Environ: tc.environ}, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if errors.Is(err, ErrNoCredentials) != strings.Contains(out.String(), "https://kick.com/settings/developer") {
					t.Errorf("explanation printed %v for %v:\n%s", !errors.Is(err, ErrNoCredentials), err, out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if out.Len() != 0 {
				t.Errorf("printed with credentials present:\n%s", out.String())
			}
		})
	}
}
