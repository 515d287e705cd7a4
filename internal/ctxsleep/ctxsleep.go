// Package ctxsleep owns the one context-aware sleep the bot's loops share (the
// SEPM client's retry back-off, the Slack and Discord clients' back-off and
// pacing, the bench's waits).
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done; it returns ctx's error then, and nil after
// a full wait. A d of zero or less does not wait (it still reports a done ctx).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
