package slack

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"sepmbot/bot"
)

// Vote reactions: Slack names them without colons.
var reactionEmoji = map[string]string{
	"white_check_mark":       bot.EmojiApprove,
	"heavy_check_mark":       bot.EmojiApprove,
	"x":                      bot.EmojiDeny,
	"heavy_multiplication_x": bot.EmojiDeny,
}

// emojiName is the Slack name of an emoji the bot reacts with.
var emojiName = map[string]string{
	bot.EmojiApprove: "white_check_mark",
	bot.EmojiDeny:    "x",
}

// reactionText turns a Slack reaction name into what the router reads: ✅ / ❌ for
// the vote names (skin tones dropped), ":name:" for the rest.
func reactionText(name string) string {
	name, _, _ = strings.Cut(name, "::") // "+1::skin-tone-2"
	if e, ok := reactionEmoji[name]; ok {
		return e
	}
	return ":" + name + ":"
}

// refusal is an envelope refused before it is recorded: it changes nothing, and
// the person gets the reason where Slack lets the bot answer.
type refusal string

func (a *Adapter) foreignTeam(team string) refusal {
	return refusal(fmt.Sprintf("refused: this sepmbot serves workspace %s only; requests from workspace %s are not accepted", a.team, team))
}

// fromCommand translates a slash command.
func (a *Adapter) fromCommand(sc slack.SlashCommand) (record, refusal) {
	if sc.TeamID != a.team {
		return record{}, a.foreignTeam(sc.TeamID)
	}
	if sc.UserID == "" || sc.ChannelID == "" || sc.TriggerID == "" {
		return record{}, "refused: the command arrived without a user, channel or trigger id"
	}
	text := strings.TrimSpace("/sepm " + sc.Text)
	return record{Key: "cmd/" + sc.TriggerID, Received: a.now(), Event: inEvent{
		Kind: int(bot.EventCommand), User: sc.UserID, Channel: sc.ChannelID, Text: text, Command: true,
	}}, ""
}

// fromInteraction translates a click (block_actions); other interactions carry
// nothing for the bot.
func (a *Adapter) fromInteraction(cb slack.InteractionCallback) ([]record, refusal) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil, ""
	}
	if cb.Team.ID != a.team {
		return nil, a.foreignTeam(cb.Team.ID)
	}
	if cb.User.TeamID != "" && cb.User.TeamID != a.team {
		return nil, a.foreignTeam(cb.User.TeamID)
	}
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	var out []record
	for _, ba := range cb.ActionCallback.BlockActions {
		out = append(out, record{
			Key:      "act/" + ba.ActionTs + "/" + cb.User.ID + "/" + ba.ActionID,
			Received: a.now(),
			Event: inEvent{Kind: int(bot.EventButton), User: cb.User.ID, Channel: channel,
				MessageRef: cb.Container.MessageTs, ActionID: ba.ActionID, Value: ba.Value},
		})
	}
	return out, ""
}

// fromEvent translates an Events API callback: reactions on messages. The bot's
// own reactions, events of other teams and other event types are dropped.
func (a *Adapter) fromEvent(ev slackevents.EventsAPIEvent) []record {
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok || cb.EventID == "" {
		return nil
	}
	if ev.TeamID != a.team {
		a.log.Warn("slack: refusing an event from another workspace", "team", ev.TeamID)
		return nil
	}
	var kind bot.EventKind
	var user, name string
	var item slackevents.Item
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.ReactionAddedEvent:
		kind, user, name, item = bot.EventReactionAdded, e.User, e.Reaction, e.Item
	case *slackevents.ReactionRemovedEvent:
		kind, user, name, item = bot.EventReactionRemoved, e.User, e.Reaction, e.Item
	default:
		return nil
	}
	if user == a.botUser || item.Type != "message" {
		return nil // the bot seeds its own ✅ ❌; those are not votes
	}
	return []record{{Key: "ev/" + cb.EventID, Received: a.now(), Event: inEvent{
		Kind: int(kind), User: user, Channel: item.Channel, MessageRef: item.Timestamp, Reaction: reactionText(name), Name: name,
	}}}
}

// toEvent prepares a recorded envelope for the router: a reacting user's team is
// checked (reactions do not say it), the user's role groups are resolved, and the
// reply handle is attached.
func (a *Adapter) toEvent(ctx context.Context, d *delivery) (bot.Event, bool) {
	in := d.rec.Event
	kind := bot.EventKind(in.Kind)
	if kind == bot.EventReactionAdded || kind == bot.EventReactionRemoved {
		team, err := a.users.team(ctx, in.User)
		if err != nil {
			// Fail closed, but say so: the person can react again.
			a.log.Warn("slack: could not check a reacting user's workspace; the reaction does not count", "user", in.User, "err", err)
			if !d.silent && (in.Reaction == bot.EmojiApprove || in.Reaction == bot.EmojiDeny) {
				a.refuse(ctx, in.Channel, in.User, "your reaction was not counted: sepmbot could not check your Slack account just now; remove it and react again in a minute")
			}
			return bot.Event{}, false
		}
		if team != a.team {
			a.log.Warn("slack: ignoring a reaction of a user from another workspace", "user", in.User, "team", team)
			a.markHandled(d)
			return bot.Event{}, false
		}
	}
	ev := bot.Event{
		Kind: kind, DeliveryID: d.rec.Key, Platform: "slack", User: in.User, Channel: in.Channel,
		Text: in.Text, Reaction: in.Reaction, MessageRef: in.MessageRef, ActionID: in.ActionID, Value: in.Value,
		// The inbox record (committed before the ack, deduped by key) is the
		// delivery's record; reconciled reactions have none: the router keeps them.
		Recorded: !d.silent,
	}
	if len(a.cfg.Groups) > 0 {
		ev.UserGroups = a.grp.of(ctx, in.User)
	}
	a.attachReply(&ev, d)
	return ev, true
}

// markHandled queues the envelope's record to be marked answered.
func (a *Adapter) markHandled(d *delivery) {
	if d.silent || d.rec.Key == "" {
		return
	}
	a.handledQ.push(d.rec.Key)
}

// GroupsOf returns the configured user groups (S…) user belongs to, as the role
// check sees them (cached GroupTTL; none after a failed refresh). A role resolver
// that is given only a user key ("slack:U…") can ask it.
func (a *Adapter) GroupsOf(ctx context.Context, user string) []string {
	if len(a.cfg.Groups) == 0 {
		return nil
	}
	return a.grp.of(ctx, user)
}
