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
// limits (cut with "…and N more", never an API error): the title as the embed's
// title, the status, body, list, steps, progress and context lines as its
// description (context lines in italics), fields as inline fields. Every text is made
// printable and passed through bot.EscapeDiscord first (bot.Fitted), so a group
// name, a SEPM error or a reason can neither ping nor hide a link.
func render(m bot.Message) rendered {
	lim := bot.DiscordLimits
	lim.Text = maxEmbedTotal - 400 // a long body (the help) continues in a second embed
	m = bot.Fitted(m, lim, bot.EscapeDiscord)
	var out rendered
	e := &discordgo.MessageEmbed{Color: embedColour}
	if m.Title != "" {
		e.Title = bot.Clip(plain(m.Title), maxTitle)
	}
	var parts []string
	if m.Status != "" {
		parts = append(parts, "_"+md(m.Status)+"_")
	}
	if m.Text != "" {
		parts = append(parts, md(m.Text))
	}
	var items []string
	for _, it := range m.List {
		items = append(items, "• "+md(it))
	}
	if len(items) > 0 {
		parts = append(parts, strings.Join(items, "\n"))
	}
	var steps []string
	for _, st := range m.Steps {
		steps = append(steps, md(bot.StepLine(st)))
	}
	if len(steps) > 0 {
		parts = append(parts, strings.Join(steps, "\n"))
	}
	if p := m.Progress; p != nil {
		var lines []string
		if l := p.Line(); l != "" {
			lines = append(lines, md(l))
		}
		for _, n := range p.Notes {
			lines = append(lines, md(n))
		}
		if len(lines) > 0 {
			parts = append(parts, strings.Join(lines, "\n"))
		}
	}
	var ctx []string
	for _, c := range m.Context {
		ctx = append(ctx, "_"+md(c)+"_")
	}
	if len(ctx) > 0 {
		parts = append(parts, strings.Join(ctx, "\n"))
	}
	// Fields get at most fieldBudget runes together; the description the rest.
	used := 0
	for k, f := range m.Fields {
		name := bot.Clip(plain(f.Label), maxFieldName)
		value := bot.Clip(md(f.Value), maxFieldValue)
		if name == "" {
			name = "\u200b"
		}
		if value == "" {
			value = "\u200b"
		}
		n := len([]rune(name)) + len([]rune(value))
		if used+n > fieldBudget {
			e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "\u200b", Value: bot.AndMore(len(m.Fields) - k)})
			used += 20
			break
		}
		used += n
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: name, Value: value, Inline: true})
	}
	budget := maxEmbedTotal - len([]rune(e.Title)) - used
	desc := bot.ClipLines(strings.Join(parts, "\n\n"), max(budget, 100))
	chunks := splitLines(desc, maxDescription)
	e.Description = chunks[0]
	if e.Description == "" && e.Title == "" && len(e.Fields) == 0 {
		e.Description = "\u200b"
	}
	out.Embeds = []*discordgo.MessageEmbed{e}
	for _, c := range chunks[1:] {
		out.Embeds = append(out.Embeds, &discordgo.MessageEmbed{Description: c, Color: embedColour})
	}
	out.Components = buttons(m.Buttons, false)
	return out
}

// fieldBudget is what the fields of one embed may take together (Discord's 6,000 is
// for the whole embed).
const (
	fieldBudget = 1800
)

// buttons renders the buttons, five to a row; disabled greys them all.
func buttons(bs []bot.Button, disabled bool) []discordgo.MessageComponent {
	var rows []discordgo.MessageComponent
	var row discordgo.ActionsRow
	for _, b := range bs {
		if len(rows) == maxRows {
			break
		}
		id := b.ActionID + ":" + b.Value
		if b.Confirm != "" && b.ActionID == "approve" {
			id = askPrefix + id
		}
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

// md renders the bot's markdown subset for Discord: *bold* becomes **bold** outside
// code spans; `code` stays. The text is already escaped (bot.Fitted).
func md(s string) string {
	var b strings.Builder
	parts := strings.Split(s, "`")
	for i, part := range parts {
		if i > 0 {
			b.WriteByte('`')
		}
		if i%2 == 1 && i < len(parts)-1 {
			b.WriteString(part)
			continue
		}
		b.WriteString(boldStars(part))
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
	return strings.NewReplacer("*", "", "`", "", "\n", " ").Replace(s)
}

// splitLines cuts s into pieces of at most n runes, at line breaks where it can.
func splitLines(s string, n int) []string {
	var out []string
	for utf8.RuneCountInString(s) > n {
		r := []rune(s)
		at := n
		for k := n; k > n/2; k-- {
			if r[k] == '\n' {
				at = k
				break
			}
		}
		out = append(out, string(r[:at]))
		s = strings.TrimPrefix(string(r[at:]), "\n")
	}
	return append(out, s)
}

// cut shortens s to at most n runes, ending with "…" when it cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// shortLine is the first line of a message's text, for a one-line thread reply.
func shortLine(m bot.Message) string {
	text := m.Text
	if strings.TrimSpace(text) == "" {
		text = m.Title
	}
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	return cut(line, 300)
}
