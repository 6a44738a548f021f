package store

import "context"

// SetBeforeStatement installs the test hook run before each statement.
func SetBeforeStatement(s *Store, f func(ctx context.Context, name string)) { s.beforeStmt = f }

// Both ways status_events rows go in, for comparing them.
const (
	CopyEvents   = copyEvents
	InsertEvents = insertEvents
)

var (
	EncodeEventsCopy = encodeEventsCopy
	EncodeEvents     = encodeEvents
)

// MigrateTo migrates up to a version, for testing a migration over data.
var MigrateTo = migrateTo
