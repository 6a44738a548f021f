// Package unixsock owns how a daemon listens on its API's Unix socket:
// create the directory, take over a stale socket only when nothing answers
// on it, never remove anything else, and set the socket's mode. kickcollector
// and kicknotify share it; the client side is kickapi.Dial.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketMode is the mode of an API socket: the daemon's user and group may
// connect. Give the socket the admin group through the service's
// primary group (systemd Group=, RuntimeDirectory) so its members can reach it.
const SocketMode = 0o660

// Listen listens on the Unix socket at path for daemon's API (daemon, e.g.
// "kickcollector", is named in the error when the socket is taken). It
// creates the parent directory if needed. An existing socket is probed
// first: if something answers (another instance of daemon) Listen refuses;
// if nothing does, the stale socket is removed. A path that exists and is not a socket
// is never removed. The socket is chmod'ed to SocketMode after listen and
// removed when the listener closes.
func Listen(path, daemon string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen %s: create directory: %w", path, err)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("listen %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("listen %s: the path exists and is not a socket; refusing to remove it", path)
	default:
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("listen %s: another process answers on this socket (is another %s running?)", path, daemon)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen %s: probe existing socket: %w", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", path, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("listen %s: chmod: %w", path, err)
	}
	return lis, nil
}
