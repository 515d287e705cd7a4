package discord

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
)

// The reactions the bot seeds on an approval request, and reads back in a reconcile.
var voteEmoji = []string{bot.EmojiApprove, bot.EmojiDeny}

var deliverySeq atomic.Int64

// reactionKey names one user's reaction on one message.
func reactionKey(channel, message, user, emoji string) string {
	return channel + "/" + message + "/" + user + "/" + strings.TrimSuffix(emoji, "\ufe0f")
}

// reactionEvent builds the event of a reaction change with a fresh delivery id: a
// change that reaches here is new (the state check dropped the repeats), so it must
// never be mistaken for an earlier one by the router's dedupe.
func (d *Discord) reactionEvent(kind bot.EventKind, channel, message, user, emoji string, roles []string) bot.Event {
	return bot.Event{
		Kind: kind, DeliveryID: fmt.Sprintf("rx-%s-%d", d.run, deliverySeq.Add(1)), Platform: PlatformName,
		User: user, UserGroups: roles, Channel: channel, Reaction: emoji, MessageRef: message,
	}
}

// present records the reaction's state; false means it already was in that state
// (a redelivery, or a reconcile finding what an event already told).
func (d *Discord) present(key string, on bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	was, known := d.reactions[key]
	d.reactions[key] = on
	return !known || was != on
}

func (d *Discord) isBot(user string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return user != "" && user == d.botID
}

// onRequest reports whether a reaction is on an approval request: one this process
// posted, or one the notifier knows (after a restart).
func (d *Discord) onRequest(channel, message string) bool {
	d.mu.Lock()
	posted := d.requests[message]
	d.mu.Unlock()
	if posted || d.cfg.Messages == nil {
		return true
	}
	_, ok := d.cfg.Messages.ApprovalHome(d.ctx, bot.Ref{Platform: PlatformName, Channel: channel, ID: message}.String())
	return ok
}

func (d *Discord) reactionAdd(r *discordgo.MessageReactionAdd) {
	if r.MessageReaction == nil || d.isBot(r.UserID) || !d.onRequest(r.ChannelID, r.MessageID) {
		return
	}
	emoji := r.Emoji.APIName()
	if !d.present(reactionKey(r.ChannelID, r.MessageID, r.UserID, emoji), true) {
		return
	}
	var roles []string
	if r.Member != nil {
		roles = r.Member.Roles
		d.cacheRoles(r.GuildID, r.UserID, roles)
	} else {
		roles = d.memberRoles(d.ctx, r.GuildID, r.ChannelID, r.UserID)
	}
	d.emit(d.reactionEvent(bot.EventReactionAdded, r.ChannelID, r.MessageID, r.UserID, emoji, roles))
}

func (d *Discord) reactionRemove(r *discordgo.MessageReactionRemove) {
	if r.MessageReaction == nil || d.isBot(r.UserID) || !d.onRequest(r.ChannelID, r.MessageID) {
		return
	}
	emoji := r.Emoji.APIName()
	if !d.present(reactionKey(r.ChannelID, r.MessageID, r.UserID, emoji), false) {
		return
	}
	// A removal carries no member: the roles come from GuildMember, cached briefly.
	roles := d.memberRoles(d.ctx, r.GuildID, r.ChannelID, r.UserID)
	d.emit(d.reactionEvent(bot.EventReactionRemoved, r.ChannelID, r.MessageID, r.UserID, emoji, roles))
}

func (d *Discord) cacheRoles(guild, user string, roles []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.members[guild+"/"+user] = member{roles: slices.Clone(roles), at: d.cfg.Now()}
	d.userGuild[user] = guild
}

// memberRoles returns a member's role ids: from the cache within MemberTTL, else
// GuildMember. A failed lookup returns none (the user then holds only roles given
// to their user id: failing closed).
func (d *Discord) memberRoles(ctx context.Context, guild, channel, user string) []string {
	roles, err := d.lookupRoles(ctx, guild, channel, user)
	if err != nil {
		d.log.Warn("discord: reading a member's roles", "user", user, "err", err)
		return nil
	}
	return roles
}

func (d *Discord) lookupRoles(ctx context.Context, guild, channel, user string) ([]string, error) {
	if guild == "" {
		d.mu.Lock()
		guild = d.userGuild[user]
		d.mu.Unlock()
	}
	if guild == "" && channel != "" {
		guild = d.guildOf(ctx, channel)
	}
	if guild == "" {
		return nil, fmt.Errorf("no server known for user %s", user)
	}
	d.mu.Lock()
	m, ok := d.members[guild+"/"+user]
	d.mu.Unlock()
	if ok && d.cfg.Now().Sub(m.at) < d.cfg.MemberTTL {
		return m.roles, nil
	}
	var roles []string
	err := d.call(ctx, "member.get", true, func(opts ...discordgo.RequestOption) error {
		mem, err := d.s.GuildMember(guild, user, opts...)
		if err == nil {
			roles = mem.Roles
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	d.cacheRoles(guild, user, roles)
	return roles, nil
}

// MemberRoles returns the role ids user (a Discord user id) holds now in the
// configured server (or the one they last acted in), cached for MemberTTL: the
// engine's role resolver asks it at the dangerous step, since an approver named by
// role may have lost the role since their vote. An error means nobody can tell.
func (d *Discord) MemberRoles(ctx context.Context, user string) ([]string, error) {
	roles, err := d.lookupRoles(ctx, d.cfg.GuildID, "", user)
	if err != nil {
		return nil, fmt.Errorf("discord roles of %s: %w", user, err)
	}
	return roles, nil
}

// guildOf is the configured guild, else the channel's (GET /channels/{id}).
func (d *Discord) guildOf(ctx context.Context, channel string) string {
	if d.cfg.GuildID != "" {
		return d.cfg.GuildID
	}
	var g string
	_ = d.call(ctx, "channel.get", true, func(opts ...discordgo.RequestOption) error {
		ch, err := d.s.Channel(channel, opts...)
		if err == nil {
			g = ch.GuildID
		}
		return err
	})
	return g
}

// reconcile reads back the ✅/❌ reactions on every open approval request after a
// READY: a reaction added while the gateway was down (its event lost: v0.29.0 often
// cannot resume) becomes the event it would have been; one removed meanwhile is
// retracted. Users whose vote is already counted are only marked present.
func (d *Discord) reconcile(ctx context.Context) {
	if d.cfg.Requests == nil {
		return
	}
	reqs, err := d.cfg.Requests.OpenRequests(ctx)
	if err != nil {
		d.log.Warn("discord reconcile: listing open approval requests", "err", err)
		return
	}
	for _, req := range reqs {
		for _, emoji := range voteEmoji {
			users, err := d.reactors(ctx, req.Channel, req.Message, emoji)
			if err != nil {
				d.log.Warn("discord reconcile: reading reactions", "message", req.Message, "err", err)
				continue
			}
			d.reconcileOne(ctx, req, emoji, users)
		}
	}
}

func (d *Discord) reconcileOne(ctx context.Context, req OpenRequest, emoji string, users []string) {
	prefix := req.Channel + "/" + req.Message + "/"
	suffix := "/" + strings.TrimSuffix(emoji, "\ufe0f")
	for _, u := range users {
		if d.isBot(u) || !d.present(reactionKey(req.Channel, req.Message, u, emoji), true) {
			continue
		}
		if slices.Contains(req.Voted, u) {
			continue // counted already (by this reaction before a restart, or a button)
		}
		roles := d.memberRoles(ctx, "", req.Channel, u)
		d.log.Info("discord reconcile: a reaction the gateway did not deliver", "message", req.Message, "user", u, "emoji", emoji)
		d.emit(d.reactionEvent(bot.EventReactionAdded, req.Channel, req.Message, u, emoji, roles))
	}
	// Reactions this process saw that are gone now: removed while the gateway was down.
	d.mu.Lock()
	var gone []string
	for k, on := range d.reactions {
		if on && strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			u := strings.TrimSuffix(strings.TrimPrefix(k, prefix), suffix)
			if !slices.Contains(users, u) {
				d.reactions[k] = false
				gone = append(gone, u)
			}
		}
	}
	d.mu.Unlock()
	for _, u := range gone {
		roles := d.memberRoles(ctx, "", req.Channel, u)
		d.emit(d.reactionEvent(bot.EventReactionRemoved, req.Channel, req.Message, u, emoji, roles))
	}
}

// reactors lists every user who reacted with emoji on a message (paged by 100).
func (d *Discord) reactors(ctx context.Context, channel, message, emoji string) ([]string, error) {
	var out []string
	after := ""
	for page := 0; page < 50; page++ {
		var users []*discordgo.User
		err := d.call(ctx, "reaction.list", true, func(opts ...discordgo.RequestOption) error {
			var err error
			users, err = d.s.MessageReactions(channel, message, emoji, 100, "", after, opts...)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out = append(out, u.ID)
		}
		if len(users) < 100 {
			break
		}
		after = users[len(users)-1].ID
	}
	return out, nil
}
