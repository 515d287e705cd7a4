package discord

import (
	"strings"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
)

// Discord's limits (https://discord.com/developers/docs/resources/message).
const (
	maxContent     = 2000
	maxTitle       = 256
	maxDescription = 4096
	maxFieldName   = 256
	maxFieldValue  = 1024
	maxFields      = 25
	maxFooter      = 2048
	maxEmbedTotal  = 6000
	maxButtonLabel = 80
	maxCustomID    = 100
	maxButtonsRow  = 5
	maxRows        = 5
)

// embedColour is the card's side bar colour.
const embedColour = 0x2b6cb0

// noMentions is sent with every message: nobody is pinged, whatever the text says.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// rendered is a message as Discord takes it.
type rendered struct {
	Embeds     []*discordgo.MessageEmbed
	Components []discordgo.MessageComponent
}

// render turns the neutral message into one embed and its buttons, within Discord's
// limits (text is cut with "…and N more lines", never an API error).
func render(m bot.Message) rendered {
	var out rendered
	desc := fit(discordMarkdown(m.Text), maxDescription)
	if desc == "" {
		desc = "\u200b"
	}
	out.Embeds = []*discordgo.MessageEmbed{{Description: desc, Color: embedColour}}
	out.Components = buttons(m.Buttons, false)
	return out
}

// buttons renders the buttons, five to a row; disabled greys them all.
func buttons(bs []bot.Button, disabled bool) []discordgo.MessageComponent {
	var rows []discordgo.MessageComponent
	var row discordgo.ActionsRow
	for _, b := range bs {
		if len(rows) == maxRows {
			break
		}
		id := b.ActionID + ":" + b.Value
		if len(id) > maxCustomID {
			continue // cannot be clicked reliably; the reaction still votes
		}
		style := discordgo.SecondaryButton
		switch b.Style {
		case "primary":
			style = discordgo.SuccessButton
		case "danger":
			style = discordgo.DangerButton
		}
		row.Components = append(row.Components, discordgo.Button{
			Label: cut(plain(b.Label), maxButtonLabel), Style: style, CustomID: id, Disabled: disabled || buttonDisabled(b),
		})
		if len(row.Components) == maxButtonsRow {
			rows = append(rows, row)
			row = discordgo.ActionsRow{}
		}
	}
	if len(row.Components) > 0 && len(rows) < maxRows {
		rows = append(rows, row)
	}
	if rows == nil {
		rows = []discordgo.MessageComponent{} // an edit must clear old buttons
	}
	return rows
}

// Escape neutralises mentions and links in text from SEPM or a user: @everyone,
// @here, <@id>, <#id>, <@&id> and masked links [text](url) show as typed and ping or
// hide nothing (allowed mentions are off too).
func Escape(s string) string {
	r := strings.NewReplacer(
		"@everyone", "@\u200beveryone", "@here", "@\u200bhere",
		"<@", "<\u200b@", "<#", "<\u200b#", "](", "]\u200b(", "://", ":\u200b//",
	)
	return r.Replace(s)
}

// discordMarkdown turns the bot's markdown subset (*bold*, `code`) into Discord's
// (**bold**) and neutralises mentions and links everywhere outside code.
func discordMarkdown(s string) string {
	var b strings.Builder
	inCode := false
	for i, part := range strings.Split(s, "`") {
		if i > 0 {
			b.WriteByte('`')
			inCode = !inCode
		}
		if inCode {
			b.WriteString(strings.ReplaceAll(part, "@", "@\u200b"))
			continue
		}
		b.WriteString(boldStars(Escape(part)))
	}
	return b.String()
}

// boldStars doubles single asterisks: *x* (Slack-style bold) -> **x**.
func boldStars(s string) string {
	if !strings.Contains(s, "*") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '*' {
			if i+1 < len(s) && s[i+1] == '*' {
				b.WriteString("**")
				i++
				continue
			}
			b.WriteString("**")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// plain strips markdown characters from short labels.
func plain(s string) string {
	return strings.NewReplacer("*", "", "`", "", "\n", " ").Replace(Escape(s))
}

// fit cuts text to limit characters at a line boundary, saying how much was left out.
func fit(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	lines := strings.Split(s, "\n")
	for n := len(lines) - 1; n > 0; n-- {
		tail := "\n…and " + itoa(len(lines)-n) + " more lines"
		head := strings.Join(lines[:n], "\n")
		if utf8.RuneCountInString(head)+utf8.RuneCountInString(tail) <= limit {
			return head + tail
		}
	}
	return cut(s, limit)
}

// cut shortens s to at most n runes, ending with "…" when it cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// shortLine is the first line of a message's text, for a one-line thread reply.
func shortLine(m bot.Message) string {
	line, _, _ := strings.Cut(strings.TrimSpace(m.Text), "\n")
	return cut(line, 300)
}
