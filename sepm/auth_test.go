package sepm

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const authPath = "POST /sepm/api/v1/identity/authenticate"

// TestAuthRejectedStopsAtOnce: a 401 from identity/authenticate is not an outage. The
// call fails at once with ErrAuthRejected (no retry, though GETs retry 4 times), and
// later calls send no log-in at all, so a service account is not locked by the bot.
func TestAuthRejectedStopsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(c *Client) error
	}{
		{"Groups", func(c *Client) error { _, err := c.Groups(t.Context()); return err }},
		{"Do", func(c *Client) error { return c.Do(t.Context(), "GET", "groups", nil, nil) }},
		{"Login", func(c *Client) error { return c.Login(t.Context()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.echoPassword = true // a careless server echoes the password
			okGroups(f)
			c := newTestClient(t, f, func(cfg *Config) { cfg.Password = "Wrong-Pa55word#42"; cfg.MaxRetries = 4 })
			err := tc.call(c)
			if !errors.Is(err, ErrAuthRejected) {
				t.Fatalf("err = %v, want ErrAuthRejected", err)
			}
			var marked interface{ AuthRejected() bool }
			if !errors.As(err, &marked) || !marked.AuthRejected() {
				t.Errorf("err = %v does not carry AuthRejected()", err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Path != "identity/authenticate" {
				t.Errorf("err = %#v, want it to unwrap to SEPM's 401 on identity/authenticate", err)
			}
			if n := f.hitCount(authPath); n != 1 {
				t.Errorf("authenticate calls = %d, want 1: a refused log-in is never retried", n)
			}
			// Every later automatic log-in is refused without contacting SEPM.
			for range 5 {
				_, err := c.Groups(t.Context())
				if !errors.Is(err, ErrAuthRejected) {
					t.Fatalf("later call: err = %v, want ErrAuthRejected", err)
				}
				if !strings.Contains(err.Error(), "no further log-in") {
					t.Errorf("later call: %q does not say that no log-in is sent", err)
				}
				if strings.Contains(err.Error(), "Wrong-Pa55word#42") {
					t.Errorf("error %q contains the password", err)
				}
			}
			if n := f.hitCount(authPath); n != 1 {
				t.Errorf("authenticate calls = %d after 5 more calls, want still 1", n)
			}
			if n := f.hitCount("GET /sepm/api/v1/groups"); n != 0 {
				t.Errorf("groups calls = %d, want 0 without a session", n)
			}
		})
	}
}

// TestAuthRejectedMessage: the sentinel's text says what happened and what to do, and
// carries no secret.
func TestAuthRejectedMessage(t *testing.T) {
	f := newFake(t)
	f.echoPassword = true
	c := newTestClient(t, f, func(cfg *Config) { cfg.Password = "Wrong-Pa55word#42" })
	err := c.Login(t.Context())
	msg := err.Error()
	for _, want := range []string{"refused the bot's credentials", "401", "Invalid user name or password", "will not retry", "does not lock"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "Wrong-Pa55word#42") || strings.Contains(ErrAuthRejected.Error(), "Pa55") {
		t.Errorf("message %q carries the password", msg)
	}
}

// TestLoginTriesAgainAfterRejection: an explicit Login (an operator's resume) is the
// one way to try again; once SEPM accepts, calls work again.
func TestLoginTriesAgainAfterRejection(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Password = "old-password" })
	if _, err := c.Groups(t.Context()); !errors.Is(err, ErrAuthRejected) {
		t.Fatalf("err = %v, want ErrAuthRejected", err)
	}
	c.cfg.Password = testPass // the account was fixed; no call is in flight
	if err := c.Login(t.Context()); err != nil {
		t.Fatalf("Login after the fix: %v", err)
	}
	if _, err := c.Groups(t.Context()); err != nil {
		t.Fatalf("after Login: %v", err)
	}
	if n := f.hitCount(authPath); n != 2 {
		t.Errorf("authenticate calls = %d, want 2 (refused, then the explicit Login)", n)
	}
}

// TestExpiredSessionThenRejected: the session ends and the password was changed
// meanwhile: the one re-login is refused and nothing more is sent.
func TestExpiredSessionThenRejected(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, nil)
	if _, err := c.Groups(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.expireAll()
	c.cfg.Password = "changed-elsewhere" // sequential: no call in flight
	for range 3 {
		if _, err := c.Groups(t.Context()); !errors.Is(err, ErrAuthRejected) {
			t.Fatalf("err = %v, want ErrAuthRejected", err)
		}
	}
	if n := f.hitCount(authPath); n != 2 {
		t.Errorf("authenticate calls = %d, want 2 (the first log-in and one refused re-login)", n)
	}
}

// TestConcurrentCallsOneRefusedLogin: many callers at once cost one failed logon.
func TestConcurrentCallsOneRefusedLogin(t *testing.T) {
	f := newFake(t)
	okGroups(f)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Password = "wrong" })
	var wg sync.WaitGroup
	var rejected atomic.Int32
	for range 8 {
		wg.Go(func() {
			if _, err := c.Groups(t.Context()); errors.Is(err, ErrAuthRejected) {
				rejected.Add(1)
			}
		})
	}
	wg.Wait()
	if rejected.Load() != 8 {
		t.Errorf("%d of 8 calls got ErrAuthRejected", rejected.Load())
	}
	if n := f.hitCount(authPath); n != 1 {
		t.Errorf("authenticate calls = %d, want 1", n)
	}
}

// TestLoginOutageStillRetried: a 503 from identity/authenticate is an outage, not a
// refusal: it is retried, and it does not stop later log-ins.
func TestLoginOutageStillRetried(t *testing.T) {
	f := newFakeUnstarted(t)
	okGroups(f)
	var failures atomic.Int32
	failures.Store(2)
	inner := f.srv.Config.Handler
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method+" "+r.URL.Path == authPath && failures.Add(-1) >= 0 {
			f.count(r)
			writeError(w, http.StatusServiceUnavailable, "Service Unavailable")
			return
		}
		inner.ServeHTTP(w, r)
	})
	f.srv.StartTLS()
	c := newTestClient(t, f, nil)
	if _, err := c.Groups(t.Context()); err != nil {
		t.Fatalf("after two 503s on authenticate: %v", err)
	}
	if n := f.hitCount(authPath); n != 3 {
		t.Errorf("authenticate calls = %d, want 3 (two 503s retried, then ok)", n)
	}
}
