package store

import "context"

// SetBeforeStatement installs the test hook run before each statement.
func SetBeforeStatement(s *Store, f func(ctx context.Context, name string)) { s.beforeStmt = f }
