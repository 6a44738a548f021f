// Package logkeys holds the slog attribute keys the viewer logs with, so
// they never drift between files. Append keys; never rename one.
package logkeys

const (
	Component = "component"
	Socket    = "socket"
	Err       = "err"
	Seq       = "seq"
	FromSeq   = "from_seq"
	Backoff   = "backoff"
	Count     = "count"
	Slugs     = "slugs"
)
