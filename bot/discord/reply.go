package discord

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
)

// autoDefer is when the adapter defers an interaction nobody has acknowledged yet,
// so the 3 s window is never missed (a busy router queue, a slow disk).
const autoDefer = 1500 * time.Millisecond

// interactionReply answers one interaction: Ack within the 3 s window (the answer
// itself, or a deferral for a placeholder), Answer later through the interaction
// token (15 minutes) or, after that, in the channel with the bot token.
type interactionReply struct {
	d         *Discord
	i         *discordgo.Interaction
	at        time.Time
	component bool // a button or form: defer without a visible "thinking"
	// replaces: the click's own message is ours to rewrite with the answer (the
	// ephemeral confirmation of an approval: its button goes once used).
	replaces bool

	mu       sync.Mutex
	acked    bool
	deferred bool
	timer    *time.Timer
}

func (r *interactionReply) arm() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = time.AfterFunc(autoDefer, func() {
		if err := r.Ack(r.d.ctx, bot.Message{}); err != nil {
			r.d.log.Warn("discord: deferring an interaction", "err", err)
		}
	})
}

// Ack sends the first response. An empty or placeholder message defers (type 5, an
// ephemeral "thinking…", for a command; type 6 for a click); anything else is the
// answer (type 4; ephemeral when meant for the user only). It never waits behind a
// rate limit: a 429 returns at once.
func (r *interactionReply) Ack(ctx context.Context, m bot.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.acked {
		if isPlaceholder(m) || isEmpty(m) {
			return nil
		}
		return r.answerLocked(ctx, m)
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	resp := &discordgo.InteractionResponse{}
	placeholder := isPlaceholder(m) || isEmpty(m)
	switch {
	case placeholder && r.component:
		resp.Type = discordgo.InteractionResponseDeferredMessageUpdate
	case placeholder:
		resp.Type = discordgo.InteractionResponseDeferredChannelMessageWithSource
		resp.Data = &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral}
	case r.replaces:
		resp.Type = discordgo.InteractionResponseUpdateMessage
		resp.Data = r.data(m)
		resp.Data.Components, resp.Data.Flags = []discordgo.MessageComponent{}, 0
	default:
		resp.Type = discordgo.InteractionResponseChannelMessageWithSource
		resp.Data = r.data(m)
	}
	ctx, cancel := context.WithTimeout(ctx, ackWindow)
	defer cancel()
	err := r.d.call(ctx, "interaction.callback", false, func(opts ...discordgo.RequestOption) error {
		return r.d.s.InteractionRespond(r.i, resp, opts...)
	})
	r.acked = true // a failed first answer cannot be repeated either way
	r.deferred = placeholder
	return err
}

// Answer delivers the real answer after a deferral.
func (r *interactionReply) Answer(ctx context.Context, m bot.Message) error {
	r.mu.Lock()
	if !r.acked {
		r.mu.Unlock()
		return r.Ack(ctx, m)
	}
	defer r.mu.Unlock()
	return r.answerLocked(ctx, m)
}

func (r *interactionReply) answerLocked(ctx context.Context, m bot.Message) error {
	if r.d.cfg.Now().Sub(r.at) > tokenLife {
		_, err := r.d.send(ctx, r.i.ChannelID, "<@"+userID(r.i)+">", m)
		return err
	}
	rd := render(m)
	private := ephemeral(m)
	if r.deferred && r.replaces {
		r.deferred = false
		return r.d.call(ctx, "interaction.edit", true, func(opts ...discordgo.RequestOption) error {
			none := []discordgo.MessageComponent{}
			_, err := r.d.s.InteractionResponseEdit(r.i, &discordgo.WebhookEdit{Embeds: &rd.Embeds, Components: &none, AllowedMentions: noMentions()}, opts...)
			return err
		})
	}
	if r.deferred && !r.component && private {
		r.deferred = false // the next answer follows up
		return r.d.call(ctx, "interaction.edit", true, func(opts ...discordgo.RequestOption) error {
			_, err := r.d.s.InteractionResponseEdit(r.i, &discordgo.WebhookEdit{Embeds: &rd.Embeds, Components: &rd.Components, AllowedMentions: noMentions()}, opts...)
			return err
		})
	}
	params := &discordgo.WebhookParams{Embeds: rd.Embeds, Components: rd.Components, AllowedMentions: noMentions()}
	if private {
		params.Flags = discordgo.MessageFlagsEphemeral
	}
	err := r.d.call(ctx, "interaction.followup", true, func(opts ...discordgo.RequestOption) error {
		_, err := r.d.s.FollowupMessageCreate(r.i, true, params, opts...)
		return err
	})
	if err == nil && r.deferred && !r.component {
		// The ephemeral "thinking…" has nothing left to say once the answer is public.
		r.deferred = false
		_ = r.d.call(ctx, "interaction.delete", true, func(opts ...discordgo.RequestOption) error {
			return r.d.s.InteractionResponseDelete(r.i, opts...)
		})
	}
	return err
}

func (r *interactionReply) data(m bot.Message) *discordgo.InteractionResponseData {
	rd := render(m)
	data := &discordgo.InteractionResponseData{Embeds: rd.Embeds, Components: rd.Components, AllowedMentions: noMentions()}
	if ephemeral(m) {
		data.Flags = discordgo.MessageFlagsEphemeral
	}
	return data
}

func userID(i *discordgo.Interaction) string {
	if u, _ := interactionUser(i); u != nil {
		return u.ID
	}
	return ""
}

// isEmpty reports a message with nothing to show (the auto-deferral's).
func isEmpty(m bot.Message) bool {
	return m.Title == "" && m.Status == "" && strings.TrimSpace(m.Text) == "" && len(m.Fields) == 0 && len(m.List) == 0 &&
		len(m.Steps) == 0 && m.Progress == nil && len(m.Context) == 0 && len(m.Buttons) == 0
}
