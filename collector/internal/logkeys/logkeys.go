// Package logkeys holds the slog attribute keys of the collector, so the
// same fact is always logged under the same name. Append keys; never
// rename one (operators query logs by them).
package logkeys

// Attribute keys.
const (
	Component  = "component"
	Err        = "err"
	URL        = "url"
	Socket     = "socket"     // kickmon's shard number of a Pusher socket
	SocketID   = "socket_id"  // Pusher's socket_id
	Channel    = "channel"    // a Pusher channel name
	ChannelID  = "channel_id" // Kick's channel id
	UserID     = "user_id"    // Kick's broadcaster_user_id
	Event      = "event"      // a Pusher or webhook event name
	CloseCode  = "close_code" // a WebSocket close code
	Backoff    = "backoff"    // a wait before a retry
	Channels   = "channels"   // a number of channels
	MessageID  = "message_id" // Kick-Event-Message-Id
	Status     = "status"     // an HTTP status code
	Reason     = "reason"     // why something was rejected
	Count      = "count"      // a number of things
	Addr       = "addr"       // a listen address
	Scheme     = "scheme"     // http or https
	Subscriber = "subscriber" // a webhook subscription id
	Provider   = "provider"   // a realtime provider ("pusher", "centrifugo")
	Negotiated = "negotiated" // whether a realtime provider came from negotiation
)

// Spool and gRPC server keys.
const (
	Path     = "path"      // a file or socket path
	First    = "first"     // the first seq of a range
	Last     = "last"      // the last seq of a range
	Seq      = "seq"       // an event's seq
	After    = "after_seq" // the last committed seq before something happened
	Bytes    = "bytes"     // a size in bytes
	MaxBytes = "max_bytes" // a configured size bound
	BytesWas = "bytes_was" // a size in bytes before a change (compaction)
	Took     = "took"      // how long an operation took
	LogID    = "log_id"    // an event log's identity
	Method   = "method"    // a gRPC method
	PeerUID  = "peer_uid"  // a Unix socket peer's uid
	Group    = "group"     // a Unix group name
)

// Kick API client and poller keys.
const (
	Endpoint  = "endpoint"   // a Kick API endpoint ("channels", "token", …)
	ErrKind   = "err_kind"   // a kickrest error kind ("rate-limited", "blocked", …)
	ExpiresAt = "expires_at" // when the app token expires
	Renewals  = "renewals"   // app token renewals so far
	Slug      = "slug"       // a Kick channel slug
	Health    = "health"     // a source's health ("ok", "blocked", …)
	Batch     = "batch"      // the number of ids in one request
	Rate      = "rate"       // a request rate, per budget window
)

// Process keys.
const (
	Version    = "version"     // kickcollector's version
	StatusLine = "status_line" // the STATUS= line sent to systemd
	Notify     = "notify"      // an sd_notify state ("READY=1", …)
)
