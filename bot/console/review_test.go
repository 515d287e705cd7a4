package console

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestEventsCloseWhenContextDone: the channel closes when ctx is done although the
// input is still open and silent (a terminal), as the Platform contract says; else
// the router never returns and `sepmbot run` ignores SIGINT/SIGTERM.
func TestEventsCloseWhenContextDone(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	c := New(pr, io.Discard, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.Events(ctx)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("an event from silent input")
		}
	case <-time.After(10 * time.Second): // failure guard, not a wait for success
		t.Fatal("Events channel still open after ctx was cancelled")
	}
}
