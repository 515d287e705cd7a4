package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"sepmbot/admin"
)

// TestSlackCountsReachTheMetrics: the Slack adapter's API calls and 429s land in
// the admin listener's counters (sepmbot_chat_api_*), by platform and method.
func TestSlackCountsReachTheMetrics(t *testing.T) {
	m := admin.NewMetrics(nil)
	c := slackMetrics{m}
	c.APICall("slack", "chat.update")
	c.APICall("slack", "chat.update")
	c.RateLimited("slack", "chat.update")
	calls, err := testutil.GatherAndCount(m.Registry, "sepmbot_chat_api_calls_total")
	if err != nil || calls != 1 {
		t.Fatalf("call series %d (%v), want 1", calls, err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "sepmbot_chat_api_rate_limited_total"); err != nil || n != 1 {
		t.Fatalf("rate-limited series %d (%v), want 1", n, err)
	}
	var d chatDeps
	d.Observer = m // the Discord adapter reports through the same shape
	d.Observer.ChatRateLimited("discord", "PATCH /channels/{id}/messages/{id}")
	if n, _ := testutil.GatherAndCount(m.Registry, "sepmbot_chat_api_rate_limited_total"); n != 2 {
		t.Fatalf("rate-limited series %d, want 2 (slack and discord)", n)
	}
}
