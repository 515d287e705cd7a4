package discord

import "sepmbot/bot"

// buttonDisabled reports a button the model marks disabled (a decided request).
func buttonDisabled(bot.Button) bool { return false }

// setReply attaches the interaction's reply handle to ev.
func setReply(ev *bot.Event, r *interactionReply) {
	r.d.mu.Lock()
	r.d.replies[ev.DeliveryID] = r
	r.d.mu.Unlock()
}

// setReason carries the reason typed in the deny form.
func setReason(ev *bot.Event, reason string) { ev.Text = reason }

// isPlaceholder reports an acknowledgement with nothing to say yet.
func isPlaceholder(bot.Message) bool { return false }

// ephemeral reports an answer meant for its user only.
func ephemeral(bot.Message) bool { return true }
