// Package logkeys holds the slog attribute keys of the writer, so the same
// fact is always logged under the same name. Append keys; never rename one
// (operators query logs by them).
package logkeys

// Attribute keys.
const (
	Component = "component"
	Err       = "err"
	Socket    = "socket"     // the collector's Unix socket path
	Database  = "database"   // the database URL, password redacted
	Seq       = "seq"        // one event's seq
	FirstSeq  = "first_seq"  // first seq of a range
	LastSeq   = "last_seq"   // last seq of a range
	Events    = "events"     // a number of events
	Rows      = "rows"       // a number of rows written
	Duration  = "duration"   // how long something took
	Backoff   = "backoff"    // a wait before a retry
	Kind      = "kind"       // an event kind
	UserID    = "user_id"    // Kick's broadcaster_user_id
	Version   = "version"    // a schema or build version
	Addr      = "addr"       // a listen address
	Event     = "event"      // an event, as JSON
	Partition = "partition"  // a status_events partition
	Before    = "before"     // a cutoff time
	LogID     = "log_id"     // the collector's event log id
	OldLogID  = "old_log_id" // the event log id the cursor belonged to
	SessionID = "session_id" // a stream session's id
)
