package ctxsleep

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestSleep: a full wait takes d on the fake clock and returns nil; a cancelled
// ctx ends it early with its error; zero or less does not wait.
func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), 3*time.Second); err != nil || time.Since(start) != 3*time.Second {
			t.Fatalf("full wait: %v after %s", err, time.Since(start))
		}
		ctx, cancel := context.WithCancel(context.Background())
		start = time.Now()
		time.AfterFunc(time.Second, cancel)
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) != time.Second {
			t.Fatalf("cancelled: %v after %s", err, time.Since(start))
		}
		start = time.Now()
		if err := Sleep(context.Background(), -time.Second); err != nil || time.Since(start) != 0 {
			t.Fatalf("negative: %v after %s", err, time.Since(start))
		}
		if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("zero on a done ctx: %v", err)
		}
	})
}
