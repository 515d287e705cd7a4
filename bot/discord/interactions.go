package discord

import (
	"context"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
)

// ackWindow bounds the first answer to an interaction: Discord drops it after 3 s.
const ackWindow = 2500 * time.Millisecond

// tokenLife is how long an interaction token may edit its response or follow up
// (Discord: 15 minutes); later answers go to the channel with the bot token.
const tokenLife = 14 * time.Minute

// seenTTL is how long an interaction id is remembered for dedupe (its token dies
// after 15 minutes, so no redelivery can come later).
const seenTTL = 20 * time.Minute

// Custom ids of the approval buttons and the deny modal.
const (
	modalDeny        = "deny-reason"
	inputReason      = "reason"
	askPrefix        = "ask-"       // a button whose click asks its Confirm question first
	confirmedApprove = "approve-ok" // the button of that question
)

// firstTime records an interaction id; false means it was already acted on.
func (d *Discord) firstTime(id string) bool {
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, at := range d.seen {
		if now.Sub(at) > seenTTL {
			delete(d.seen, k)
		}
	}
	if _, ok := d.seen[id]; ok {
		return false
	}
	d.seen[id] = now
	return true
}

// interaction handles one interaction from the gateway or the HTTP endpoint.
func (d *Discord) interaction(i *discordgo.Interaction) {
	if i == nil || i.ID == "" || !d.firstTime(i.ID) {
		return
	}
	user, roles := interactionUser(i)
	if user == nil || user.Bot {
		return
	}
	ev := bot.Event{
		DeliveryID: i.ID, Platform: PlatformName, User: user.ID, UserGroups: roles, Channel: i.ChannelID,
	}
	if i.GuildID != "" && i.Member != nil {
		d.cacheRoles(i.GuildID, user.ID, i.Member.Roles)
	}
	reply := &interactionReply{d: d, i: i, at: d.cfg.Now(), component: i.Type != discordgo.InteractionApplicationCommand}
	switch i.Type {
	case discordgo.InteractionApplicationCommand:
		text, err := commandText(i.ApplicationCommandData(), d.cfg.Sites)
		if err != nil {
			go func() { _ = reply.Ack(d.ctx, bot.Message{Text: err.Error(), Visibility: bot.VisibleUser}) }()
			return
		}
		ev.Kind, ev.Text = bot.EventCommand, text
	case discordgo.InteractionApplicationCommandAutocomplete:
		go d.autocomplete(i)
		return
	case discordgo.InteractionMessageComponent:
		action, value, _ := strings.Cut(i.MessageComponentData().CustomID, ":")
		if i.Message != nil {
			ev.MessageRef = i.Message.ID
		}
		switch action {
		case "deny":
			go d.askReason(i, value)
			return
		case askPrefix + "approve":
			go d.askConfirm(i, value)
			return
		case confirmedApprove:
			// "approve-ok:NONCE:MESSAGE": the click on the confirmation, bound to the
			// request's message (not the ephemeral one it sits on).
			nonce, msg, ok := strings.Cut(value, ":")
			if !ok {
				return
			}
			action, value, ev.MessageRef = "approve", nonce, msg
			reply.replaces = true
		}
		ev.Kind, ev.ActionID, ev.Value = bot.EventButton, action, value
	case discordgo.InteractionModalSubmit:
		data := i.ModalSubmitData()
		action, value, _ := strings.Cut(data.CustomID, ":")
		if action != modalDeny {
			go func() { _ = reply.Ack(d.ctx, bot.Message{Text: "unknown form", Visibility: bot.VisibleUser}) }()
			return
		}
		if i.Message != nil {
			ev.MessageRef = i.Message.ID
		}
		ev.Kind, ev.ActionID, ev.Value = bot.EventButton, "deny", value
		setReason(&ev, modalText(data, inputReason))
	default:
		return
	}
	reply.arm()
	setReply(&ev, reply)
	d.emit(ev)
}

// interactionUser is the clicking user and their roles: Member in a server, User in DMs.
func interactionUser(i *discordgo.Interaction) (*discordgo.User, []string) {
	if i.Member != nil && i.Member.User != nil {
		return i.Member.User, i.Member.Roles
	}
	return i.User, nil
}

// askReason answers a Deny click with a modal asking why (the vote counts when the
// form is sent).
func (d *Discord) askReason(i *discordgo.Interaction, value string) {
	resp := &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseModal,
		Data: &discordgo.InteractionResponseData{
			CustomID: modalDeny + ":" + value, Title: "Deny the approval request",
			Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
				discordgo.TextInput{CustomID: inputReason, Label: "Why? (kept in the audit trail)", Style: discordgo.TextInputParagraph, Required: true, MaxLength: 400},
			}}},
		},
	}
	ctx, cancel := context.WithTimeout(d.ctx, ackWindow)
	defer cancel()
	if err := d.call(ctx, "interaction.callback", false, func(opts ...discordgo.RequestOption) error {
		return d.s.InteractionRespond(i, resp, opts...)
	}); err != nil {
		d.log.Warn("discord: showing the deny form", "err", err)
	}
}

// askConfirm answers an Approve click with the question its button carries
// (ephemeral), and a button that casts the vote.
func (d *Discord) askConfirm(i *discordgo.Interaction, nonce string) {
	d.mu.Lock()
	question := d.confirms[nonce]
	d.mu.Unlock()
	if question == "" {
		question = "Approve this request? Secure communication goes off in the groups it lists."
	}
	msg := ""
	if i.Message != nil {
		msg = i.Message.ID
	}
	id := confirmedApprove + ":" + nonce + ":" + msg
	m := bot.Message{Text: question, Visibility: bot.VisibleUser}
	r := render(m)
	if len(id) <= maxCustomID {
		r.Components = []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Yes, approve", Style: discordgo.SuccessButton, CustomID: id},
		}}}
	}
	resp := &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource, Data: &discordgo.InteractionResponseData{
		Embeds: r.Embeds, Components: r.Components, Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: noMentions(),
	}}
	ctx, cancel := context.WithTimeout(d.ctx, ackWindow)
	defer cancel()
	if err := d.call(ctx, "interaction.callback", false, func(opts ...discordgo.RequestOption) error {
		return d.s.InteractionRespond(i, resp, opts...)
	}); err != nil {
		d.log.Warn("discord: asking to confirm an approval", "err", err)
	}
}

// remember keeps the confirmation questions of a message's buttons, by value (the
// request's nonce), for the click that asks them.
func (d *Discord) remember(m bot.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range m.Buttons {
		if b.Confirm == "" || b.Value == "" {
			continue
		}
		if len(d.confirms) >= 256 {
			clear(d.confirms) // a handful are live at once; the rest asked generically
		}
		d.confirms[b.Value] = b.Confirm
	}
}

func modalText(data discordgo.ModalSubmitInteractionData, id string) string {
	for _, row := range data.Components {
		r, ok := row.(*discordgo.ActionsRow)
		if !ok {
			continue
		}
		for _, c := range r.Components {
			if ti, ok := c.(*discordgo.TextInput); ok && ti.CustomID == id {
				return oneLine(ti.Value)
			}
		}
	}
	return ""
}

// autocomplete answers an autocomplete interaction with rotation or step ids.
func (d *Discord) autocomplete(i *discordgo.Interaction) {
	data := i.ApplicationCommandData()
	var focused *discordgo.ApplicationCommandInteractionDataOption
	var rotation string
	if len(data.Options) == 1 {
		for _, o := range data.Options[0].Options {
			if o.Name == "id" {
				rotation = oneLine(o.StringValue())
			}
			if o.Focused {
				focused = o
			}
		}
	}
	ctx, cancel := context.WithTimeout(d.ctx, ackWindow)
	defer cancel()
	var choices []*discordgo.ApplicationCommandOptionChoice
	if focused != nil && d.cfg.Completer != nil {
		typed := strings.ToLower(oneLine(focused.StringValue()))
		var ids []string
		var err error
		switch focused.Name {
		case "id":
			ids, err = d.cfg.Completer.RotationIDs(ctx)
		case "step":
			if rotation != "" {
				ids, err = d.cfg.Completer.StepIDs(ctx, rotation)
			}
		}
		if err != nil {
			d.log.Warn("discord: autocomplete", "err", err)
		}
		for _, id := range ids {
			if len(choices) == 25 {
				break
			}
			if strings.Contains(strings.ToLower(id), typed) {
				choices = append(choices, &discordgo.ApplicationCommandOptionChoice{Name: cut(id, 100), Value: id})
			}
		}
	}
	if choices == nil {
		choices = []*discordgo.ApplicationCommandOptionChoice{}
	}
	resp := &discordgo.InteractionResponse{Type: discordgo.InteractionApplicationCommandAutocompleteResult, Data: &discordgo.InteractionResponseData{Choices: choices}}
	if err := d.call(ctx, "interaction.callback", false, func(opts ...discordgo.RequestOption) error {
		return d.s.InteractionRespond(i, resp, opts...)
	}); err != nil {
		d.log.Warn("discord: answering autocomplete", "err", err)
	}
}
