package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// PeerCred is the AuthInfo of a connection on the Unix socket: the peer's
// credentials as the kernel reported them (SO_PEERCRED) at connect time.
type PeerCred struct {
	credentials.CommonAuthInfo
	// Known is false when the connection was not a Unix socket or the
	// kernel did not answer; such peers may only read.
	Known    bool
	PID      int32
	UID, GID uint32
}

// String names the peer in denials: "uid N" or "an unidentified peer".
func (p PeerCred) String() string {
	if !p.Known {
		return "an unidentified peer"
	}
	return fmt.Sprintf("uid %d", p.UID)
}

// AuthType implements credentials.AuthInfo.
func (PeerCred) AuthType() string { return "peercred" }

// peerCredentials is a TransportCredentials that does no encryption (the
// socket is local) and reads the peer's credentials during the handshake.
type peerCredentials struct{}

func (peerCredentials) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := PeerCred{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c, info, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return c, info, nil
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err == nil && credErr == nil {
		info.Known, info.PID, info.UID, info.GID = true, cred.Pid, cred.Uid, cred.Gid
	}
	return c, info, nil
}

func (peerCredentials) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, PeerCred{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (p peerCredentials) Clone() credentials.TransportCredentials { return p }

func (peerCredentials) OverrideServerName(string) error { return nil }

// Authorizer decides who may call mutating RPCs: root, the collector's own
// uid, and members of the admin group (primary gid of the connecting
// process, or the user's groups in the user database).
type Authorizer struct {
	self     uint32
	group    string
	gid      uint32
	groupErr error // why the group could not be resolved
	// groupsOf lists uid's groups from the user database.
	groupsOf func(uid uint32) ([]uint32, error)
}

// NewAuthorizer resolves the admin group by name (KICKMON_ADMIN_GROUP). An
// empty or unknown group leaves only root and the collector's own uid
// allowed; GroupErr says why.
func NewAuthorizer(group string) *Authorizer {
	a := &Authorizer{self: uint32(os.Getuid()), group: group, groupsOf: userGroups}
	if group == "" {
		a.groupErr = errors.New("no admin group configured")
		return a
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		a.groupErr = fmt.Errorf("admin group %q: %w", group, err)
		return a
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		a.groupErr = fmt.Errorf("admin group %q: gid %q: %w", group, g.Gid, err)
		return a
	}
	a.gid = uint32(gid)
	return a
}

// GroupErr is why the admin group could not be resolved, or nil.
func (a *Authorizer) GroupErr() error { return a.groupErr }

// Authorize returns nil if the peer may call the mutating method, else a
// PERMISSION_DENIED status naming the admin group.
func (a *Authorizer) Authorize(p PeerCred, method string) error {
	var groups []uint32
	if p.Known && a.groupErr == nil && p.UID != 0 && p.UID != a.self && p.GID != a.gid {
		// Only look the user up when the cheap checks did not decide; a
		// uid without a user entry simply has no supplementary groups.
		groups, _ = a.groupsOf(p.UID)
	}
	if allowed(p, a.self, a.gid, a.groupErr == nil, groups) {
		return nil
	}
	who := p.String()
	msg := fmt.Sprintf("%s may not call %s: only root, the collector's user and members of group %q (KICKMON_ADMIN_GROUP) may change the collector", who, method, a.group)
	if a.groupErr != nil {
		msg = fmt.Sprintf("%s may not call %s: only root and the collector's user may change the collector (%v)", who, method, a.groupErr)
	}
	return status.Error(codes.PermissionDenied, msg)
}

// AuthorizeSelf returns nil if the peer is root or the collector's own uid
// (the writer's), else a PERMISSION_DENIED status; the admin group does
// not count.
func (a *Authorizer) AuthorizeSelf(p PeerCred, method string) error {
	if allowed(p, a.self, 0, false, nil) {
		return nil
	}
	who := p.String()
	return status.Errorf(codes.PermissionDenied, "%s may not call %s: only root and the collector's own user (the writer runs as it) may acknowledge events", who, method)
}

// allowed is the decision: root, the collector's own uid, or a member of the
// admin group (when there is one) by primary gid or supplementary groups.
func allowed(p PeerCred, self, adminGID uint32, haveGroup bool, groups []uint32) bool {
	switch {
	case !p.Known:
		return false
	case p.UID == 0, p.UID == self:
		return true
	case !haveGroup:
		return false
	}
	return p.GID == adminGID || slices.Contains(groups, adminGID)
}

// userGroups returns the gids of uid's primary and supplementary groups
// from the user database.
func userGroups(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, fmt.Errorf("look up uid %d: %w", uid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of uid %d: %w", uid, err)
	}
	ids = append(ids, u.Gid)
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			out = append(out, uint32(g))
		}
	}
	return out, nil
}

// peerOf returns the peer credentials of the call in ctx.
func peerOf(ctx context.Context) PeerCred {
	if p, ok := peer.FromContext(ctx); ok {
		if pc, ok := p.AuthInfo.(PeerCred); ok {
			return pc
		}
	}
	return PeerCred{}
}
