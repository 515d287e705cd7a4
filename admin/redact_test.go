package admin

import (
	"context"
	"strings"
	"testing"

	"sepmbot/bot"
)

type words []string

func (w words) Redact(s string) string {
	for _, x := range w {
		s = strings.ReplaceAll(s, x, "[REDACTED]")
	}
	return s
}

func (w words) Contains(s string) bool {
	for _, x := range w {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

type capture struct {
	bot.Platform
	sent []bot.Message
}

func (c *capture) Name() string { return "console" }
func (c *capture) Post(_ context.Context, _ string, m bot.Message) (string, error) {
	c.sent = append(c.sent, m)
	return "1", nil
}
func (c *capture) Edit(_ context.Context, _, _ string, m bot.Message) error {
	c.sent = append(c.sent, m)
	return nil
}

// TestPlatformNeverSendsASecret: a registered secret in any string of a message
// (text, buttons) is replaced before the platform sees it; the caller's message is
// unchanged; a message without one is passed as it is; calls are counted.
func TestPlatformNeverSendsASecret(t *testing.T) {
	inner := &capture{}
	m := NewMetrics(nil)
	p := m.InstrumentPlatform(inner, words{"hunter2-secret"})
	msg := bot.Message{Text: "login with hunter2-secret", Buttons: []bot.Button{{Label: "x hunter2-secret", Value: "v"}}}
	if _, err := p.Post(context.Background(), "c", msg); err != nil {
		t.Fatal(err)
	}
	_ = p.Edit(context.Background(), "c", "1", bot.Message{Text: "clean"})
	got := inner.sent[0]
	if strings.Contains(got.Text, "hunter2") || strings.Contains(got.Buttons[0].Label, "hunter2") || got.Buttons[0].Value != "v" {
		t.Errorf("sent %+v", got)
	}
	if !strings.Contains(msg.Text, "hunter2") || !strings.Contains(msg.Buttons[0].Label, "hunter2") {
		t.Error("the caller's message was changed")
	}
	if inner.sent[1].Text != "clean" {
		t.Errorf("clean message changed: %+v", inner.sent[1])
	}
	if n := counter(t, m, "sepmbot_chat_api_calls_total", map[string]string{"platform": "console", "method": "post"}); n != 1 {
		t.Errorf("posts counted %v", n)
	}
}
