package admin

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"sepmbot/rotation"
	"sepmbot/sepm"
)

type countingSEPM struct {
	rotation.SEPM
	n atomic.Int32
}

func (c *countingSEPM) Version(context.Context) (sepm.Version, error) {
	c.n.Add(1)
	return sepm.Version{}, nil
}

func (c *countingSEPM) Groups(context.Context) ([]sepm.Group, error) { return nil, nil }

// TestWatchCallsOnlyWhenQuiet: Watch asks SEPM at once, then only when no other
// call answered within the interval (on a fake clock).
func TestWatchCallsOnlyWhenQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &countingSEPM{}
		inst := NewMetrics(nil).InstrumentSEPM("a", inner)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { inst.Watch(ctx, 10*time.Second); close(done) }()
		synctest.Wait()
		if n := inner.n.Load(); n != 1 {
			t.Fatalf("%d calls at start, want 1", n)
		}
		time.Sleep(5 * time.Second)
		_, _ = inst.Groups(ctx) // the engine polled: SEPM answered at t=5s
		time.Sleep(5 * time.Second)
		synctest.Wait() // t=10s: the last answer is 5s old
		if n := inner.n.Load(); n != 1 {
			t.Errorf("%d calls at t=10s, want 1 (another call answered 5s ago)", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait() // t=20s: quiet for 15s
		if n := inner.n.Load(); n != 2 {
			t.Errorf("%d calls at t=20s, want 2", n)
		}
		cancel()
		<-done
	})
}
