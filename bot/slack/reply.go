package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"sepmbot/bot"
	"sepmbot/internal/ctxsleep"
)

// acker answers a transport once: Socket Mode's envelope ack or HTTP mode's
// response. A slash command's acker fires empty by itself after AckWait, so Slack
// always gets its answer in time; the router's answer then follows by the Web API.
type acker struct {
	mu    sync.Mutex
	fn    func(payload any)
	done  bool
	timer *time.Timer
}

func (a *Adapter) newAcker(fn func(payload any), command bool) *acker {
	k := &acker{fn: fn}
	if command {
		k.mu.Lock()
		k.timer = time.AfterFunc(a.cfg.AckWait, func() { k.send(nil) })
		k.mu.Unlock()
	}
	return k
}

// send answers with payload (nil: an empty ack); false if already answered.
func (k *acker) send(payload any) bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	if k.done {
		k.mu.Unlock()
		return false
	}
	k.done = true
	if k.timer != nil {
		k.timer.Stop()
	}
	k.mu.Unlock()
	k.fn(payload)
	return true
}

// reply is a Slack event's bot.Reply: an ephemeral first answer rides on a slash
// command's ack when it is still open; everything else goes by the Web API with
// the bot token (chat.postEphemeral for the user only, chat.postMessage for the
// channel), never by response_url, which dies after 30 minutes.
type reply struct {
	a *Adapter
	d *delivery
}

func (a *Adapter) attachReply(ev *bot.Event, d *delivery) { ev.Reply = &reply{a: a, d: d} }

// Ack answers at once.
func (r *reply) Ack(ctx context.Context, m bot.Message) error {
	if !m.Placeholder {
		defer r.a.markHandled(r.d) // after the answer: the mark is no reason to make it wait
	}
	if r.d.silent {
		return nil
	}
	if k := r.d.ack; k != nil {
		if m.Visibility == bot.VisibleUser || m.Placeholder {
			if p, ok := ackPayload(m); ok && k.send(p) {
				return nil
			}
		}
		k.send(nil)
	}
	return r.a.send(ctx, r.d.rec.Event.Channel, r.d.rec.Event.User, m)
}

// Answer delivers the real answer later.
func (r *reply) Answer(ctx context.Context, m bot.Message) error {
	defer r.a.markHandled(r.d)
	if r.d.silent {
		return nil
	}
	r.d.ack.send(nil)
	return r.a.send(ctx, r.d.rec.Event.Channel, r.d.rec.Event.User, m)
}

// send shows m to user only (VisibleUser) or to the channel; a placeholder has
// nothing to show outside an ack.
func (a *Adapter) send(ctx context.Context, channel, user string, m bot.Message) error {
	if m.Placeholder {
		return nil
	}
	if m.Visibility == bot.VisibleUser {
		return a.ephemeral(ctx, channel, user, m)
	}
	_, err := a.Post(ctx, channel, m)
	return err
}

// ephemeral shows m to one user in channel (chat.postEphemeral), waiting out a 429.
func (a *Adapter) ephemeral(ctx context.Context, channel, user string, m bot.Message) error {
	blocks, text := render(m)
	for {
		_, err := a.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
		wait, limited := retryAfter(err)
		if !limited {
			if err != nil {
				return fmt.Errorf("slack: chat.postEphemeral: %w", err)
			}
			return nil
		}
		if err := ctxsleep.Sleep(ctx, wait+jitter()); err != nil {
			return err
		}
	}
}

// Respond answers an event without a reply handle (the router's fallback).
func (a *Adapter) Respond(ctx context.Context, ev bot.Event, m bot.Message) error {
	if ev.Reply != nil {
		return ev.Reply.Answer(ctx, m)
	}
	return a.send(ctx, ev.Channel, ev.User, m)
}

var errNoTS = errors.New("slack: chat.postMessage returned no ts")
