// Package systemd tells systemd how kicknotify is doing: READY once it
// really works (database reachable, River's tables there, workers started,
// status socket bound), STATUS lines for `systemctl status`, WATCHDOG pings
// only while a health check passes, STOPPING on shutdown. Silent without
// NOTIFY_SOCKET. (A copy of the writer's small wrapper, as style.md
// prefers to a shared module.)
package systemd

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/kickmon/kickmon/notify/internal/logkeys"
)

// Notifier sends sd_notify messages.
type Notifier struct {
	log *slog.Logger
}

// New returns a Notifier; log receives send failures at debug level.
func New(log *slog.Logger) *Notifier { return &Notifier{log: log} }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify failed", "state", state, logkeys.Err, err)
	}
}

// Ready says the service is serving.
func (n *Notifier) Ready() { n.send(daemon.SdNotifyReady) }

// Stopping says a graceful shutdown has begun.
func (n *Notifier) Stopping() { n.send(daemon.SdNotifyStopping) }

// Status sets the one-line status shown by systemctl status.
func (n *Notifier) Status(s string) { n.send("STATUS=" + s) }

// Watchdog pings systemd at half the configured WatchdogSec, but only while
// healthy returns nil, so a wedged loop gets the service restarted. It
// returns when ctx ends, at once if the watchdog is not enabled.
func (n *Notifier) Watchdog(ctx context.Context, healthy func() error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := healthy(); err != nil {
				n.log.Warn("watchdog ping withheld", logkeys.Err, err)
				continue
			}
			n.send(daemon.SdNotifyWatchdog)
		}
	}
}
