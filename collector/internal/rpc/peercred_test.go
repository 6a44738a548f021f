package rpc

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAllowed(t *testing.T) {
	const self, admin = 1000, 50
	tests := []struct {
		name      string
		peer      PeerCred
		haveGroup bool
		groups    []uint32
		want      bool
	}{
		{"unidentified peer", PeerCred{}, true, nil, false},
		{"root", PeerCred{Known: true, UID: 0, GID: 0}, true, nil, true},
		{"the collector's uid", PeerCred{Known: true, UID: self, GID: 7}, true, nil, true},
		{"admin group as primary gid", PeerCred{Known: true, UID: 2000, GID: admin}, true, nil, true},
		{"admin group as supplementary group", PeerCred{Known: true, UID: 2000, GID: 7}, true, []uint32{7, admin}, true},
		{"other user", PeerCred{Known: true, UID: 2000, GID: 7}, true, []uint32{7, 8}, false},
		{"no admin group: gid does not count", PeerCred{Known: true, UID: 2000, GID: admin}, false, []uint32{admin}, false},
		{"no admin group: root still allowed", PeerCred{Known: true, UID: 0}, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allowed(tt.peer, self, admin, tt.haveGroup, tt.groups); got != tt.want {
				t.Errorf("allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	groupsOf := func(uid uint32) ([]uint32, error) {
		if uid == 2000 {
			return []uint32{50}, nil
		}
		return []uint32{7}, nil
	}
	withGroup := &Authorizer{self: 1000, group: "ops", gid: 50, groupsOf: groupsOf}
	noGroup := &Authorizer{self: 1000, group: "ops", groupErr: os.ErrNotExist, groupsOf: groupsOf}
	tests := []struct {
		name    string
		a       *Authorizer
		peer    PeerCred
		wantMsg string // empty: allowed
	}{
		{"member through the user database", withGroup, PeerCred{Known: true, UID: 2000, GID: 7}, ""},
		{"non-member", withGroup, PeerCred{Known: true, UID: 3000, GID: 7}, `uid 3000 may not call /m: only root, the collector's user and members of group "ops" (KICKMON_ADMIN_GROUP)`},
		{"unidentified", withGroup, PeerCred{}, "an unidentified peer may not call /m"},
		{"group missing", noGroup, PeerCred{Known: true, UID: 2000, GID: 7}, "only root and the collector's user may change the collector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Authorize(tt.peer, "/m")
			if tt.wantMsg == "" {
				if err != nil {
					t.Errorf("Authorize = %v, want allowed", err)
				}
				return
			}
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Authorize = %v, want PERMISSION_DENIED saying %q", err, tt.wantMsg)
			}
		})
	}
}

// TestAuthorizeSelf: acks are for root and the collector's own uid only;
// the admin group, which viewers are added to, does not count.
func TestAuthorizeSelf(t *testing.T) {
	a := &Authorizer{self: 1000, group: "ops", gid: 50, groupsOf: func(uint32) ([]uint32, error) { return []uint32{50}, nil }}
	tests := []struct {
		name  string
		peer  PeerCred
		allow bool
	}{
		{"root", PeerCred{Known: true, UID: 0, GID: 0}, true},
		{"the collector's uid", PeerCred{Known: true, UID: 1000, GID: 7}, true},
		{"admin group as primary gid", PeerCred{Known: true, UID: 2000, GID: 50}, false},
		{"admin group as supplementary group", PeerCred{Known: true, UID: 2000, GID: 7}, false},
		{"unidentified", PeerCred{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.AuthorizeSelf(tt.peer, "/m")
			switch {
			case tt.allow && err != nil:
				t.Errorf("AuthorizeSelf = %v, want allowed", err)
			case !tt.allow && (status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "only root and the collector's own user")):
				t.Errorf("AuthorizeSelf = %v, want PERMISSION_DENIED naming who may acknowledge", err)
			}
		})
	}
}

func TestNewAuthorizer(t *testing.T) {
	tests := []struct {
		group   string
		wantErr string
		wantGID uint32
	}{
		{"root", "", 0},
		{"", "no admin group configured", 0},
		{"kickmon-test-no-such-group", `admin group "kickmon-test-no-such-group"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.group, func(t *testing.T) {
			a := NewAuthorizer(tt.group)
			err := a.GroupErr()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("GroupErr = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("GroupErr = %v, want %q", err, tt.wantErr)
			case a.gid != tt.wantGID:
				t.Errorf("gid = %d, want %d", a.gid, tt.wantGID)
			}
		})
	}
}

// TestPeerPermissions runs a client as another uid (nobody) in a child
// process: mutating calls are denied unless its gid is the admin group;
// reads are always allowed. It needs root to switch uid.
func TestPeerPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the client as another uid; TestAllowed and TestAuthorize cover the decision")
	}
	const nobody = 65534
	if nobodyGroups, _ := userGroups(nobody); len(nobodyGroups) == 0 {
		t.Fatalf("uid %d has no user entry; the test needs the nobody user", nobody)
	}
	admin, adminGID := adminGroupWithout(t, nobody)
	e := start(t, func(c *config) { c.adminGroup = admin })
	// Let nobody reach the socket and run the test binary (test only).
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.path, 0o666); err != nil {
		t.Fatal(err)
	}
	exe := copyTestBinary(t, e.dir)

	tests := []struct {
		name string
		gid  uint32
		want map[string]codes.Code
	}{
		{"not in the admin group", nobody, map[string]codes.Code{
			"ListStreamers": codes.OK, "GetStatus": codes.OK,
			"AddStreamers": codes.PermissionDenied, "RemoveStreamers": codes.PermissionDenied,
			"RefreshStreamers": codes.PermissionDenied, "AckEvents": codes.PermissionDenied,
		}},
		{"admin group as primary gid", adminGID, map[string]codes.Code{
			"ListStreamers": codes.OK, "GetStatus": codes.OK,
			"AddStreamers": codes.OK, "RemoveStreamers": codes.OK, "RefreshStreamers": codes.OK,
			// Only root and the collector's uid may let the spool drop events.
			"AckEvents": codes.PermissionDenied,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe)
			// GORACE: a race-enabled child otherwise sleeps 1 s at exit.
			cmd.Env = append(os.Environ(), peerEnv+"="+e.path, "GORACE=atexit_sleep_ms=0")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: tt.gid}}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("client as uid %d: %v; stderr: %s", nobody, err, stderr.String())
			}
			got := map[string]codes.Code{}
			for line := range strings.Lines(stdout.String()) {
				f := strings.SplitN(strings.TrimSuffix(line, "\n"), "\t", 3)
				if len(f) != 3 {
					t.Fatalf("bad line %q", line)
				}
				n, err := strconv.ParseUint(f[1], 10, 32)
				if err != nil {
					t.Fatalf("code %q: %v", f[1], err)
				}
				c := codes.Code(n)
				got[f[0]] = c
				if c == codes.PermissionDenied && f[0] != "AckEvents" && !strings.Contains(f[2], strconv.Quote(admin)) {
					t.Errorf("%s denial %q does not name group %q", f[0], f[2], admin)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("codes as uid %d gid %d (-want +got):\n%s", nobody, tt.gid, diff)
			}
		})
	}
}

// adminGroupWithout picks an existing system group uid is not a member of.
func adminGroupWithout(t *testing.T, uid uint32) (string, uint32) {
	t.Helper()
	groups, _ := userGroups(uid)
	for _, name := range []string{"daemon", "bin", "sys", "adm"} {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err == nil && !slices.Contains(groups, uint32(gid)) {
			return name, uint32(gid)
		}
	}
	t.Fatalf("no system group without uid %d to use as the admin group", uid)
	return "", 0
}

// copyTestBinary copies the running test binary into dir, executable by
// everyone (the build directory is private to root).
func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "peer.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
