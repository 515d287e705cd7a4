package slack

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sepmbot/bot"
	"sepmbot/bot/slack/slackfake"
)

// TestUserGroupRolesReachTheRouter: a role naming a user group (slack-group:S1)
// holds for its members as Slack lists them, read at most every GroupTTL; when the
// list cannot be read again, nobody holds the role through it.
func TestUserGroupRolesReachTheRouter(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	fake.SetGroup("S1", "UBOB")
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	h := start(t, fake, openStore(t), false, func(c *Config) {
		c.Groups = []string{"S1"}
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	ts := postAnchor(t, h, "C1")
	roles, _ := bot.ParseRoles(nil, []string{"slack-group:S1"}, nil)

	react := func(user string) bot.Event {
		t.Helper()
		if err := fake.React(user, "C1", ts, "white_check_mark"); err != nil {
			t.Fatal(err)
		}
		ev := h.next()
		if err := fake.Unreact(user, "C1", ts, "white_check_mark"); err != nil {
			t.Fatal(err)
		}
		h.next() // the removal
		return ev
	}
	if ev := react("UBOB"); !slices.Equal(ev.UserGroups, []string{"S1"}) || !roles.IsApprover(ev) {
		t.Fatalf("bob, a member of S1: groups %v", ev.UserGroups)
	}
	if ev := react("UCAROL"); len(ev.UserGroups) != 0 || roles.IsApprover(ev) {
		t.Fatalf("carol, not a member: groups %v", ev.UserGroups)
	}
	fake.FailGroups(true)
	now.Add(int64(GroupTTL + time.Second))
	if ev := react("UBOB"); len(ev.UserGroups) != 0 || roles.IsApprover(ev) {
		t.Fatalf("after a failed refresh bob still approves through S1: %v", ev.UserGroups)
	}
	if n := fake.Calls("usergroups.users.list"); n != 2 {
		t.Fatalf("usergroups.users.list called %d times, want 2 (cached for GroupTTL)", n)
	}
}

type countRecorder struct {
	mu            sync.Mutex
	calls, limits map[string]int
}

func (c *countRecorder) APICall(p, m string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[p+" "+m]++
}

func (c *countRecorder) RateLimited(p, m string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limits[p+" "+m]++
}

func TestCountersSeeCallsAnd429s(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := &countRecorder{calls: map[string]int{}, limits: map[string]int{}}
	tr := countingTransport{next: http.DefaultTransport, c: c}
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/chat.update", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if c.calls["slack chat.update"] != 2 || c.limits["slack chat.update"] != 2 {
		t.Fatalf("calls %v, 429s %v", c.calls, c.limits)
	}
}
