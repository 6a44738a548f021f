// Package logkeys holds the slog attribute keys of kicknotify, so the same
// fact is always logged under the same name. Append keys; never rename one
// (operators query logs by them).
package logkeys

// Attribute keys.
const (
	Component = "component"
	Err       = "err"
	Database  = "database" // the database URL, password redacted
	Config    = "config"   // the targets file's path
	Targets   = "targets"  // how many targets are configured
	Target    = "target"   // a target's name (never its URL)
	Seq       = "seq"      // an event's seq
	Notice    = "notice"   // a message kind: live, back_live, offline, …
	Attempt   = "attempt"  // a delivery's attempt number
	Status    = "status"   // a target's HTTP status line
	Latency   = "latency"  // from kickmon seeing the change to its delivery
	Backoff   = "backoff"  // a wait before a retry
	Socket    = "socket"   // kicknotify's Unix socket path
	Addr      = "addr"     // a listen address
	Version   = "version"  // the build version
)
