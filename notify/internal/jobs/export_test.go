package jobs

import "context"

// SetBeforeStep installs the test hook run before each step of MoveOutbox.
func SetBeforeStep(n *Notifier, f func(ctx context.Context, name string)) { n.beforeStmt = f }
