package slackfake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func client(s *Server) *slack.Client {
	return slack.New(s.Options().BotToken, slack.OptionAPIURL(s.APIURL()))
}

func TestLimitsAnsweredWith429AndRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := New(Options{UpdateBudget: 10, Now: func() time.Time { return now }})
	defer s.Close()
	c := client(s)
	ctx := context.Background()
	_, ts1, err := c.PostMessageContext(ctx, "C1", slack.MsgOptionText("one", false))
	if err != nil {
		t.Fatal(err)
	}
	// A second post in the same channel within the second: 429.
	_, _, err = c.PostMessageContext(ctx, "C1", slack.MsgOptionText("two", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("second post in a second: %v", err)
	}
	// Another channel is not limited; the same clock instant still gives unique ts.
	_, tsA, err := c.PostMessageContext(ctx, "C2", slack.MsgOptionText("a", false))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	_, ts2, err := c.PostMessageContext(ctx, "C1", slack.MsgOptionText("two", false))
	if err != nil || ts2 == ts1 {
		t.Fatalf("post after a second: ts %s (first %s) %v", ts2, ts1, err)
	}
	_ = tsA
	// The workspace's update budget: 10 a minute here, then 429 until the oldest leaves.
	for i := range 10 {
		if _, _, _, err := c.UpdateMessageContext(ctx, "C1", ts1, slack.MsgOptionText("edit", false)); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		now = now.Add(time.Second)
	}
	_, _, _, err = c.UpdateMessageContext(ctx, "C2", tsA, slack.MsgOptionText("edit", false))
	if !errors.As(err, &rl) || rl.RetryAfter != 50*time.Second {
		t.Fatalf("11th update in a minute: %v", err)
	}
	if s.RateLimited() != 2 {
		t.Fatalf("429s counted %d", s.RateLimited())
	}
	now = now.Add(50 * time.Second)
	if _, _, _, err := c.UpdateMessageContext(ctx, "C2", tsA, slack.MsgOptionText("edit", false)); err != nil {
		t.Fatal(err)
	}
}

func TestUniqueTSPerChannelAndTokens(t *testing.T) {
	s := New(Options{PostInterval: time.Nanosecond})
	defer s.Close()
	c := client(s)
	seen := map[string]bool{}
	for range 200 {
		_, ts, err := c.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("x", false))
		if err != nil {
			t.Fatal(err)
		}
		if seen[ts] {
			t.Fatalf("ts %s twice", ts)
		}
		seen[ts] = true
	}
	bad := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL()))
	if _, err := bad.AuthTest(); err == nil || err.Error() != "invalid_auth" {
		t.Fatalf("wrong token: %v", err)
	}
	id, err := c.AuthTest()
	if err != nil || id.TeamID != "T0SEPM" || id.UserID != "UBOT" {
		t.Fatalf("auth.test %+v %v", id, err)
	}
}
