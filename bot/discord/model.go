// The adapter's glue to the bot's message model and pacing.

package discord

import (
	"time"

	"sepmbot/bot"
)

// buttonDisabled reports a button the model marks disabled (a decided request).
func buttonDisabled(b bot.Button) bool { return b.Disabled }

// setReply attaches the interaction's reply handle to ev.
func setReply(ev *bot.Event, r *interactionReply) { ev.Reply = r }

// setReason carries the reason typed in the deny form (the router reads a button
// event's Text as the ballot's reason).
func setReason(ev *bot.Event, reason string) { ev.Text = reason }

// isPlaceholder reports an acknowledgement with nothing to say yet.
func isPlaceholder(m bot.Message) bool { return m.Placeholder }

// ephemeral reports an answer meant for its user only.
func ephemeral(m bot.Message) bool { return m.Visibility == bot.VisibleUser }

// Pacing is Discord's per-channel message limits (about 5 sends or edits per 5 s per
// channel) as the notifier uses them.
func (d *Discord) Pacing() bot.Pacing {
	return bot.Pacing{CardInterval: d.cfg.CardInterval, EditBudget: 4, EditWindow: 5 * time.Second, PostInterval: time.Second}
}
