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

func running(c *Coalescer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// TestCoalesceThousandUpdates: 1,000 progress updates over 10 s with a 10 s interval
// make 2 edits, and the last edit shows the last state.
func TestCoalesceThousandUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		c := NewCoalescer(10*time.Second, 0, 0, rec.edit, nil)
		for i := range 1000 {
			c.Submit("R1", Message{Text: fmt.Sprintf("progress %d", i)})
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if want, got := []string{"progress 0@0s", "progress 999@10s"}, rec.shown(); !slices.Equal(got, want) {
			t.Errorf("edits = %v, want %v", got, want)
		}
		if running(c) {
			t.Error("worker running while idle")
		}
		c.Close()
		if got := rec.shown(); len(got) != 2 {
			t.Errorf("Close with nothing pending edited: %v", got)
		}
	})
}

// TestCoalesceNewestWins: a step's first state is not queued behind: only the newest
// state is ever pending, so the edit after a burst shows the burst's last state.
func TestCoalesceNewestWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		c := NewCoalescer(5*time.Second, 0, 0, rec.edit, nil)
		defer c.Close()
		c.Submit("R1", Message{Text: "step 3 started"})
		time.Sleep(time.Second)
		c.Submit("R1", Message{Text: "step 3 done"})
		c.Submit("R1", Message{Text: "step 4 started"})
		c.Submit("R1", Message{Text: "step 4 progress"})
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if want, got := []string{"step 3 started@0s", "step 4 progress@5s"}, rec.shown(); !slices.Equal(got, want) {
			t.Errorf("edits = %v, want %v", got, want)
		}
	})
}

// TestCoalesceSharedBudget: acceptance 2 with 3 cards sharing one budget (10 edits
// a minute, --card-interval 2s): 1,000 updates of each card across 6 step changes in
// 60 s; every edit shows the newest state of its card at its time, no card is ever
// more than its share of the budget (3 × 6 s) behind, and the edits stay within it.
func TestCoalesceSharedBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval, budget, window = 2 * time.Second, 10, time.Minute
		rec := newEditRecorder()
		c := NewCoalescer(interval, budget, window, rec.edit, nil)
		keys := []string{"R1", "R2", "R3"}
		submitted := map[string][]time.Duration{}
		start := time.Now()
		for i := range 1000 {
			for _, k := range keys {
				c.Submit(k, Message{Text: fmt.Sprintf("%d step %d", i, i*6/1000)})
				submitted[k] = append(submitted[k], time.Since(start))
			}
			time.Sleep(60 * time.Millisecond)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		c.Close()

		share := time.Duration(len(keys)) * window / budget
		checkNeverBehind(t, rec, keys, submitted, max(interval, share))
		// Within the budget: any two edits at least window/budget apart.
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for i := 1; i < len(rec.attempts); i++ {
			if gap := rec.attempts[i].at - rec.attempts[i-1].at; gap < window/budget {
				t.Errorf("edits %d and %d only %s apart", i-1, i, gap)
			}
		}
	})
}

// checkNeverBehind checks the recorded edits: each shows the newest state submitted
// before it, and each state submitted is shown (or superseded on screen) within bound.
func checkNeverBehind(t *testing.T, rec *editRecorder, keys []string, submitted map[string][]time.Duration, bound time.Duration) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, k := range keys {
		var edits []editAttempt
		for _, a := range rec.attempts {
			if a.key == k && a.err == nil {
				edits = append(edits, a)
			}
		}
		if len(edits) == 0 {
			t.Fatalf("%s: no edit", k)
		}
		state := func(a editAttempt) int {
			var n int
			fmt.Sscanf(a.text, "%d", &n)
			return n
		}
		for _, e := range edits {
			newest := 0
			for j, at := range submitted[k] {
				if at < e.at {
					newest = j
				}
			}
			if got := state(e); got < newest {
				t.Errorf("%s: edit at %s shows state %d, but %d was submitted before", k, e.at, got, newest)
			}
		}
		worst := time.Duration(0)
		for j, at := range submitted[k] {
			shownBy := time.Duration(-1)
			for _, e := range edits {
				if state(e) >= j && e.at >= at {
					shownBy = e.at
					break
				}
			}
			if shownBy < 0 {
				t.Errorf("%s: state %d (at %s) never shown", k, j, at)
				continue
			}
			worst = max(worst, shownBy-at)
		}
		if worst > bound {
			t.Errorf("%s: the card was %s behind, more than %s", k, worst, bound)
		}
		t.Logf("%s: %d edits, at most %s behind (bound %s)", k, len(edits), worst, bound)
	}
}

func TestCoalesceRateLimit(t *testing.T) {
	t.Run("newer state replaces the refused one", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := newEditRecorder()
			rec.fail = func(n int, _ string) error {
				if n == 0 {
					return fmt.Errorf("slack: chat.update: %w", RateLimitError{After: 5 * time.Second})
				}
				return nil
			}
			c := NewCoalescer(time.Second, 0, 0, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "a"})
			time.Sleep(100 * time.Millisecond)
			c.Submit("R1", Message{Text: "b"})
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if want, got := []string{"a@0s (failed)", "b@5s"}, rec.all(); !slices.Equal(got, want) {
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
			c := NewCoalescer(time.Second, 0, 0, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "a"})
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if want, got := []string{"a@0s (failed)", "a@3s (failed)", "a@6s"}, rec.all(); !slices.Equal(got, want) {
				t.Errorf("attempts = %v, want %v", got, want)
			}
		})
	})
	t.Run("holds every card", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := newEditRecorder()
			rec.fail = func(n int, _ string) error {
				if n == 0 {
					return RateLimitError{After: 4 * time.Second}
				}
				return nil
			}
			c := NewCoalescer(time.Second, 0, 0, rec.edit, nil)
			defer c.Close()
			c.Submit("R1", Message{Text: "a"})
			time.Sleep(100 * time.Millisecond)
			c.Submit("R2", Message{Text: "x"})
			time.Sleep(10 * time.Second)
			synctest.Wait()
			got := rec.all()
			if len(got) != 3 || got[0] != "a@0s (failed)" || !slices.Contains(got, "x@4s") || !slices.Contains(got, "a@4s") {
				t.Errorf("attempts = %v, want a refused, then both cards after the 4 s", got)
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
		c := NewCoalescer(time.Second, 0, 0, rec.edit, log)
		defer c.Close()
		c.Submit("R1", Message{Text: "a"})
		time.Sleep(10 * time.Millisecond)
		c.Submit("R1", Message{Text: "b"})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if want, got := []string{"a@0s (failed)", "b@1s"}, rec.all(); !slices.Equal(got, want) {
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
		c := NewCoalescer(10*time.Second, 0, 0, rec.edit, nil)
		c.Submit("R1", Message{Text: "a"})
		c.Submit("R2", Message{Text: "x"})
		time.Sleep(time.Second)
		c.Submit("R1", Message{Text: "b"})
		c.Submit("R1", Message{Text: "c"})
		c.Submit("R2", Message{Text: "y"})
		time.Sleep(time.Second)
		c.Close()
		got := rec.shown()
		slices.Sort(got)
		if want := []string{"a@0s", "c@2s", "x@0s", "y@2s"}; !slices.Equal(got, want) {
			t.Errorf("edits = %v, want %v", got, want)
		}
		c.Submit("R1", Message{Text: "late"})
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(rec.shown()); n != 4 {
			t.Errorf("an update after Close was edited: %v", rec.shown())
		}
		c.Close() // idempotent
	})
}

// TestCoalesceCloseHonoursRateLimit: a flush refused with RetryAfter is retried after
// that long; a key that stays rate limited is given up after a few attempts made
// while closing, so Close returns.
func TestCoalesceCloseHonoursRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newEditRecorder()
		rec.fail = func(_ int, text string) error {
			if text == "stuck" {
				return RateLimitError{After: 2 * time.Second}
			}
			return nil
		}
		c := NewCoalescer(10*time.Second, 0, 0, rec.edit, nil)
		c.Submit("R2", Message{Text: "stuck"})
		time.Sleep(time.Second)
		c.Close()
		if want, got := []string{"stuck@0s (failed)", "stuck@2s (failed)", "stuck@4s (failed)", "stuck@6s (failed)"}, rec.all(); !slices.Equal(got, want) {
			t.Errorf("attempts = %v, want %v", got, want)
		}
	})
}

// TestPosterOrderAndPace: posts in one channel go out in order, one per interval,
// none dropped, a rate-limited one retried in its place; channels are independent.
func TestPosterOrderAndPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var got []string
		limited := false
		p := NewPoster(time.Second, nil)
		post := func(ch, text string) func(context.Context) error {
			return func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				if text == "b" && !limited {
					limited = true
					return RateLimitError{After: 3 * time.Second}
				}
				got = append(got, fmt.Sprintf("%s:%s@%s", ch, text, time.Since(start)))
				return nil
			}
		}
		for _, s := range []string{"a", "b", "c"} {
			p.Go("A", post("A", s))
		}
		p.Go("B", post("B", "x"))
		if err := p.Do(context.Background(), "B", post("B", "y")); err != nil {
			t.Fatal(err)
		}
		p.Close()
		slices.Sort(got)
		want := []string{"A:a@0s", "A:b@4s", "A:c@5s", "B:x@0s", "B:y@1s"}
		if !slices.Equal(got, want) {
			t.Errorf("posts = %v, want %v", got, want)
		}
	})
}
