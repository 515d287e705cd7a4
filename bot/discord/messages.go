package discord

import (
	"context"
	"fmt"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
)

// Post sends m to the channel with the bot token and returns the message id. A 429
// is waited out (retry_after) a few times: posts are milestones, never dropped.
func (d *Discord) Post(ctx context.Context, channel string, m bot.Message) (string, error) {
	return d.send(ctx, channel, "", m)
}

// send posts content (raw: a user mention, shown but never pinging) above m.
func (d *Discord) send(ctx context.Context, channel, content string, m bot.Message) (string, error) {
	d.remember(m)
	r := render(m)
	var id string
	err := d.call(ctx, "message.create", true, func(opts ...discordgo.RequestOption) error {
		msg, err := d.s.ChannelMessageSendComplex(channel, &discordgo.MessageSend{
			Content: content, Embeds: r.Embeds, Components: r.Components, AllowedMentions: noMentions(),
		}, opts...)
		if err == nil {
			id = msg.ID
		}
		return err
	})
	if err == nil && hasVote(m) {
		d.mu.Lock()
		d.requests[id] = true
		d.mu.Unlock()
	}
	return id, err
}

// hasVote reports a message with approve or deny buttons: an approval request.
func hasVote(m bot.Message) bool {
	for _, b := range m.Buttons {
		if b.ActionID == "approve" || b.ActionID == "deny" {
			return true
		}
	}
	return false
}

// Edit replaces message ref with m (buttons included: an edit without buttons clears
// them). A 429 returns at once as a bot.RateLimitError so the card's coalescer waits
// and sends the newest state instead of an old one.
func (d *Discord) Edit(ctx context.Context, channel, ref string, m bot.Message) error {
	d.remember(m)
	r := render(m)
	content := ""
	return d.call(ctx, "message.edit", false, func(opts ...discordgo.RequestOption) error {
		_, err := d.s.ChannelMessageEditComplex(&discordgo.MessageEdit{
			ID: ref, Channel: channel, Content: &content, Embeds: &r.Embeds, Components: &r.Components,
			AllowedMentions: noMentions(),
		}, opts...)
		return err
	})
}

// Reply posts m in the thread of message ref (starting the thread the first time;
// a thread started from a message has that message's id) and returns its id.
func (d *Discord) Reply(ctx context.Context, channel, ref string, m bot.Message) (string, error) {
	if err := d.thread(ctx, channel, ref, m); err != nil {
		return "", err
	}
	return d.Post(ctx, ref, m)
}

// thread makes sure message ref has a thread.
func (d *Discord) thread(ctx context.Context, channel, ref string, m bot.Message) error {
	d.mu.Lock()
	has := d.threads[ref]
	d.mu.Unlock()
	if has {
		return nil
	}
	name := cut(plain(bot.Printable(shortLine(m), false)), 90)
	if name == "" {
		name = "sepmbot"
	}
	err := d.call(ctx, "thread.create", true, func(opts ...discordgo.RequestOption) error {
		_, err := d.s.MessageThreadStartComplex(channel, ref, &discordgo.ThreadStart{Name: "sepm · " + name, AutoArchiveDuration: 1440}, opts...)
		return err
	})
	if err != nil && restCode(err) != codeThreadExists {
		return fmt.Errorf("starting the thread of %s: %w", ref, err)
	}
	d.mu.Lock()
	d.threads[ref] = true
	d.mu.Unlock()
	return nil
}

// codeThreadExists: "A thread has already been created for this message".
const codeThreadExists = 160004

// React adds the bot's own reaction to message ref.
func (d *Discord) React(ctx context.Context, channel, ref, emoji string) error {
	return d.call(ctx, "reaction.add", true, func(opts ...discordgo.RequestOption) error {
		return d.s.MessageReactionAdd(channel, ref, emoji, opts...)
	})
}

// Respond answers an event without a reply handle: a reaction. Discord has no
// ephemeral answer to a reaction, so the reactor gets one short reply in the thread
// of the message they reacted to.
func (d *Discord) Respond(ctx context.Context, ev bot.Event, m bot.Message) error {
	if ev.Reply != nil {
		return ev.Reply.Answer(ctx, m)
	}
	line := shortLine(m)
	if line == "" {
		return nil
	}
	short := bot.Message{Text: line}
	mention := "<@" + ev.User + ">"
	if ev.MessageRef == "" {
		_, err := d.send(ctx, ev.Channel, mention, short)
		return err
	}
	if err := d.thread(ctx, ev.Channel, ev.MessageRef, short); err != nil {
		return err
	}
	_, err := d.send(ctx, ev.MessageRef, mention, short)
	return err
}
