package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// editRecorder is a fake edit function: it records every attempt (time since the
// bubble started, key, text) and fails the attempts fail says to.
type editRecorder struct {
	start time.Time
	fail  func(attempt int, text string) error
	delay time.Duration // how long an edit takes

	mu       sync.Mutex
	attempts []editAttempt
	inFlight map[string]int
	overlap  bool
}

type editAttempt struct {
	at   time.Duration
	key  string
	text string
	err  error
}

func newEditRecorder() *editRecorder {
	return &editRecorder{start: time.Now(), delay: time.Millisecond, inFlight: map[string]int{}}
}

func (r *editRecorder) edit(ctx context.Context, key string, m Message) error {
	r.mu.Lock()
	r.inFlight[key]++
	if r.inFlight[key] > 1 {
		r.overlap = true
	}
	n := len(r.attempts)
	var err error
	if r.fail != nil {
		err = r.fail(n, m.Text)
	}
	r.attempts = append(r.attempts, editAttempt{at: time.Since(r.start), key: key, text: m.Text, err: err})
	r.mu.Unlock()

	time.Sleep(r.delay) // an edit takes a little time: overlapping edits would show

	r.mu.Lock()
	r.inFlight[key]--
	r.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// shown returns the successful edits as "text@offset".
func (r *editRecorder) shown() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.attempts {
		if a.err == nil {
			out = append(out, fmt.Sprintf("%s@%s", a.text, a.at.Round(100*time.Millisecond)))
		}
	}
	return out
}

func (r *editRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.attempts {
		s := fmt.Sprintf("%s@%s", a.text, a.at.Round(100*time.Millisecond))
		if a.err != nil {
			s += " (failed)"
		}
		out = append(out, s)
	}
	return out
}

func runningWorkers(c *Coalescer) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.keys {
		if k.running {
			n++
		}
	}
	return n
}

// TestCoalesceThousandUpdates: 1,000 progress updates over 10 s with a 10 s interval
// make at most 2 edits, and the last edit shows the last state.
func TestCoalesceThousandUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		c := NewCoalescer(10*time.Second, rec.edit, nil)
		for i := range 1000 {
			c.Submit("R1", Message{Text: fmt.Sprintf("progress %d", i)}, false)
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()

		got := rec.shown()
		if len(got) > 2 {
			t.Errorf("%d edits, want at most 2: %v", len(got), got)
		}
		if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "progress 999@") {
			t.Errorf("last edit does not show the last state: %v", got)
		}
		if want := []string{"progress 0@0s", "progress 999@10s"}; !slices.Equal(got, want) {
			t.Errorf("edits = %v, want %v", got, want)
		}
		if n := runningWorkers(c); n != 0 {
			t.Errorf("%d workers running while idle", n)
		}
		c.Close()
		if got2 := rec.shown(); len(got2) != len(got) {
			t.Errorf("Close with nothing pending edited: %v", got2)
		}
	})
}

// TestCoalesceImportantEachShown: important updates are each shown, in order, one
// per interval; unimportant ones in between collapse to the latest.
func TestCoalesceImportantEachShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		c := NewCoalescer(time.Second, rec.edit, nil)
		defer c.Close()
		c.Submit("R1", Message{Text: "s1"}, true)
		c.Submit("R1", Message{Text: "p1"}, false)
		c.Submit("R1", Message{Text: "p2"}, false)
		c.Submit("R1", Message{Text: "s2"}, true)
		c.Submit("R1", Message{Text: "p3"}, false)
		c.Submit("R1", Message{Text: "s3"}, true)
		c.Submit("R1", Message{Text: "p4"}, false)
		c.Submit("R1", Message{Text: "p5"}, false)
		time.Sleep(10 * time.Second)
		c.Submit("R1", Message{Text: "s4"}, true) // interval long over: at once
		time.Sleep(500 * time.Millisecond)
		c.Submit("R1", Message{Text: "s5"}, true) // within the interval: at its end
		time.Sleep(5 * time.Second)
		synctest.Wait()

		want := []string{"s1@0s", "s2@1s", "s3@2s", "p5@3s", "s4@10s", "s5@11s"}
		if got := rec.shown(); !slices.Equal(got, want) {
			t.Errorf("edits = %v\nwant    %v", got, want)
		}
	})
}

// TestCoalesceKeysIndependent: each key has its own interval, at most one edit in
// flight per key, and no goroutine once idle.
func TestCoalesceKeysIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		c := NewCoalescer(2*time.Second, rec.edit, nil)
		defer c.Close()
		keys := []string{"R1", "R2", "R3"}
		for i := range 300 {
			for _, k := range keys {
				c.Submit(k, Message{Text: fmt.Sprintf("%s-%d", k, i)}, i%100 == 0)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := runningWorkers(c); n > len(keys) {
			t.Errorf("%d workers for %d keys", n, len(keys))
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := runningWorkers(c); n != 0 {
			t.Errorf("%d workers running while idle", n)
		}
		rec.mu.Lock()
		overlap := rec.overlap
		last := map[string]string{}
		times := map[string][]time.Duration{}
		for _, a := range rec.attempts {
			last[a.key] = a.text
			times[a.key] = append(times[a.key], a.at)
		}
		rec.mu.Unlock()
		if overlap {
			t.Error("two edits of one key were in flight at once")
		}
		for _, k := range keys {
			if want := k + "-299"; last[k] != want {
				t.Errorf("%s ends showing %q, want %q", k, last[k], want)
			}
			ts := times[k]
			for i := 1; i < len(ts); i++ {
				if ts[i]-ts[i-1] < 2*time.Second {
					t.Errorf("%s: edits at %v and %v, closer than the interval", k, ts[i-1], ts[i])
				}
			}
		}
	})
}

// TestCoalesceRateLimit: an edit refused with a RetryAfter error delays the next
// attempt by that much; the latest pending state is retried.
func TestCoalesceRateLimit(t *testing.T) {
	t.Run("unimportant", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := newEditRecorder()
			rec.fail = func(n int, _ string) error {
				if n == 0 {
					return fmt.Errorf("slack: chat.update: %w", RateLimitError{After: 5 * time.Second})
				}
				return nil
			}
			c := NewCoalescer(time.Second, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "a"}, false)
			time.Sleep(100 * time.Millisecond)
			c.Submit("R1", Message{Text: "b"}, false)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			want := []string{"a@0s (failed)", "b@5s"}
			if got := rec.all(); !slices.Equal(got, want) {
				t.Errorf("attempts = %v, want %v", got, want)
			}
		})
	})
	t.Run("alone is retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := newEditRecorder()
			rec.fail = func(n int, _ string) error {
				if n < 2 {
					return &RateLimitError{After: 3 * time.Second}
				}
				return nil
			}
			c := NewCoalescer(time.Second, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "a"}, false)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			want := []string{"a@0s (failed)", "a@3s (failed)", "a@6s"}
			if got := rec.all(); !slices.Equal(got, want) {
				t.Errorf("attempts = %v, want %v", got, want)
			}
		})
	})
	t.Run("important kept", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := newEditRecorder()
			rec.fail = func(n int, _ string) error {
				if n == 0 {
					return RateLimitError{After: 5 * time.Second}
				}
				return nil
			}
			rec.delay = 500 * time.Millisecond // the next update arrives while the edit is in flight
			c := NewCoalescer(time.Second, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "step done"}, true)
			time.Sleep(100 * time.Millisecond)
			c.Submit("R1", Message{Text: "progress"}, false)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			// Refused at 0.5 s, retried 5 s later, then the next state one interval on.
			want := []string{"step done@0s (failed)", "step done@5.5s", "progress@6.5s"}
			if got := rec.all(); !slices.Equal(got, want) {
				t.Errorf("attempts = %v, want %v", got, want)
			}
		})
	})
	t.Run("shorter than interval", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := newEditRecorder()
			rec.fail = func(n int, _ string) error {
				if n == 0 {
					return RateLimitError{After: time.Second}
				}
				return nil
			}
			c := NewCoalescer(4*time.Second, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "a"}, false)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			want := []string{"a@0s (failed)", "a@4s"}
			if got := rec.all(); !slices.Equal(got, want) {
				t.Errorf("attempts = %v, want %v", got, want)
			}
		})
	})
}

// TestCoalesceOtherErrorLogged: an edit error without RetryAfter is logged and the
// next update proceeds in its slot.
func TestCoalesceOtherErrorLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		var logMu sync.Mutex
		log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
		rec := newEditRecorder()
		rec.fail = func(n int, _ string) error {
			if n == 0 {
				return errors.New("boom: message not found")
			}
			return nil
		}
		c := NewCoalescer(time.Second, rec.edit, log)
		defer c.Close()
		c.Submit("R1", Message{Text: "a"}, true)
		c.Submit("R1", Message{Text: "b"}, true)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		want := []string{"a@0s (failed)", "b@1s"}
		if got := rec.all(); !slices.Equal(got, want) {
			t.Errorf("attempts = %v, want %v", got, want)
		}
		logMu.Lock()
		out := logs.String()
		logMu.Unlock()
		if !strings.Contains(out, "card edit failed") || !strings.Contains(out, "boom: message not found") || !strings.Contains(out, "key=R1") {
			t.Errorf("error not logged: %q", out)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestCoalesceCloseFlushes: Close makes the pending edits at once (the latest state of
// each key), waits for them, and ignores later updates.
func TestCoalesceCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		c := NewCoalescer(10*time.Second, rec.edit, nil)
		c.Submit("R1", Message{Text: "a"}, true)
		c.Submit("R2", Message{Text: "x"}, false)
		time.Sleep(time.Second)
		c.Submit("R1", Message{Text: "b"}, true)
		c.Submit("R1", Message{Text: "c"}, false)
		c.Submit("R2", Message{Text: "y"}, false)
		time.Sleep(time.Second)
		c.Close()
		got := rec.shown()
		slices.Sort(got)
		want := []string{"a@0s", "c@2s", "x@0s", "y@2s"}
		if !slices.Equal(got, want) {
			t.Errorf("edits = %v, want %v", got, want)
		}
		c.Submit("R1", Message{Text: "late"}, true)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(rec.shown()); n != 4 {
			t.Errorf("an update after Close was edited: %v", rec.shown())
		}
		c.Close() // idempotent
	})
}

// TestCoalesceCloseHonoursRateLimit: a flush refused with RetryAfter is retried after
// that long; a key that stays rate limited is given up after a few attempts, so Close
// returns.
func TestCoalesceCloseHonoursRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		bFailed := false
		rec.fail = func(_ int, text string) error {
			switch {
			case text == "stuck":
				return RateLimitError{After: 2 * time.Second}
			case text == "b" && !bFailed:
				bFailed = true
				return RateLimitError{After: 3 * time.Second}
			}
			return nil
		}
		c := NewCoalescer(10*time.Second, rec.edit, nil)
		c.Submit("R1", Message{Text: "a"}, false)
		time.Sleep(time.Second)
		c.Submit("R1", Message{Text: "b"}, false)
		c.Submit("R2", Message{Text: "stuck"}, false)
		time.Sleep(time.Second)
		c.Close()
		closedAt := time.Since(rec.start).Round(100 * time.Millisecond)

		var r1, r2 []string
		for _, a := range rec.all() {
			if strings.HasPrefix(a, "stuck") {
				r2 = append(r2, a)
			} else {
				r1 = append(r1, a)
			}
		}
		if want := []string{"a@0s", "b@2s (failed)", "b@5s"}; !slices.Equal(r1, want) {
			t.Errorf("R1 attempts = %v, want %v", r1, want)
		}
		if want := []string{"stuck@1s (failed)", "stuck@3s (failed)", "stuck@5s (failed)", "stuck@7s (failed)"}; !slices.Equal(r2, want) {
			t.Errorf("R2 attempts = %v, want %v", r2, want)
		}
		if closedAt != 7*time.Second {
			t.Errorf("Close returned at %s, want 7s (after the last R2 attempt)", closedAt)
		}
	})
}
