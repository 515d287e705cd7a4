package admin

import (
	"context"

	"sepmbot/bot"
)

// ChatObserver is what a chat adapter reports about its calls to the platform's API:
// every call (by method, e.g. "chat.postMessage"), whether it failed, and every
// rate-limit (HTTP 429) answer. The Slack and Discord adapters call it; *Metrics
// implements it.
type ChatObserver interface {
	ChatCall(platform, method string, err error)
	ChatRateLimited(platform, method string)
}

// ChatCall counts one call to a chat platform's API.
func (m *Metrics) ChatCall(platform, method string, err error) {
	m.chatCalls.WithLabelValues(platform, method).Inc()
	if err != nil {
		m.chatErrors.WithLabelValues(platform, method).Inc()
	}
}

// ChatRateLimited counts one 429 answer of a chat platform.
func (m *Metrics) ChatRateLimited(platform, method string) {
	m.chatLimited.WithLabelValues(platform, method).Inc()
}

// Connected is implemented by platforms that know whether they are connected
// (a Socket Mode or gateway connection); /readyz asks them. A platform that does
// not implement it counts as connected while it runs.
type Connected interface {
	Connected() bool
}

// Platform decorates a bot.Platform: it counts posts, edits, replies and
// reactions through a ChatObserver, and replaces any registered secret in what it
// sends (a last guard: nothing should try to post one). The console's calls are
// counted here; an adapter that calls the observer itself (with the platform's
// method names and 429s) is still wrapped for the guard.
type Platform struct {
	bot.Platform
	Obs    ChatObserver
	Secret Redactor // nil: nothing redacted
}

// InstrumentPlatform wraps p; secrets registered with red are never sent.
func (m *Metrics) InstrumentPlatform(p bot.Platform, red Redactor) *Platform {
	return &Platform{Platform: p, Obs: m, Secret: red}
}

// Post implements bot.Platform.
func (p *Platform) Post(ctx context.Context, channel string, msg bot.Message) (string, error) {
	ref, err := p.Platform.Post(ctx, channel, redactMessage(p.Secret, msg))
	p.Obs.ChatCall(p.Name(), "post", err)
	return ref, err
}

// Edit implements bot.Platform.
func (p *Platform) Edit(ctx context.Context, channel, ref string, msg bot.Message) error {
	err := p.Platform.Edit(ctx, channel, ref, redactMessage(p.Secret, msg))
	p.Obs.ChatCall(p.Name(), "edit", err)
	return err
}

// Reply implements bot.Platform.
func (p *Platform) Reply(ctx context.Context, channel, ref string, msg bot.Message) (string, error) {
	r, err := p.Platform.Reply(ctx, channel, ref, redactMessage(p.Secret, msg))
	p.Obs.ChatCall(p.Name(), "reply", err)
	return r, err
}

// React implements bot.Platform.
func (p *Platform) React(ctx context.Context, channel, ref, emoji string) error {
	err := p.Platform.React(ctx, channel, ref, emoji)
	p.Obs.ChatCall(p.Name(), "react", err)
	return err
}

// Respond implements bot.Platform.
func (p *Platform) Respond(ctx context.Context, ev bot.Event, msg bot.Message) error {
	err := p.Platform.Respond(ctx, ev, redactMessage(p.Secret, msg))
	p.Obs.ChatCall(p.Name(), "respond", err)
	return err
}

// Connected reports the wrapped platform's connection, true if it cannot tell.
func (p *Platform) Connected() bool {
	if c, ok := p.Platform.(Connected); ok {
		return c.Connected()
	}
	return true
}

// Pacing passes the wrapped platform's rate limits through (bot.Paced): the wrapper
// must not hide them from the notifier. A platform without limits gives the zero
// Pacing, which the notifier reads as "none of its own".
func (p *Platform) Pacing() bot.Pacing {
	if pp, ok := p.Platform.(bot.Paced); ok {
		return pp.Pacing()
	}
	return bot.Pacing{}
}
