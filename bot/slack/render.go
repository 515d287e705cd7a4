package slack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"sepmbot/bot"
)

// Block Kit limits the renderer keeps (Slack refuses more with invalid_blocks).
const (
	maxBlocks       = 50
	maxSectionText  = 3000
	maxHeaderText   = 150
	maxFields       = 10
	maxFieldText    = 2000
	maxButtonText   = 75
	maxButtonValue  = 2000
	maxContextItems = 10
	maxConfirmTitle = 100
	maxConfirmText  = 300
	maxConfirmBtn   = 30
	maxStepSections = 20
	// maxFallback bounds the notification text that goes with the blocks.
	maxFallback = 3000
	// maxAckPayload keeps a Socket Mode ack well under Slack's 20 KiB.
	maxAckPayload = 16 << 10
)

// Limits are Slack's, for the plain fallback text.
var Limits = bot.Limits{Title: maxHeaderText, Text: maxSectionText, Line: 500, List: 40, Steps: 60, Fields: maxFields, Context: maxContextItems, Buttons: 5, ButtonLabel: maxButtonText}

func runes(s string) int { return utf8.RuneCountInString(s) }

// esc makes text from SEPM or a person inert mrkdwn (no mention, no link) and
// printable, cut to n runes after escaping: a multi-line text loses whole lines
// first and says how many ("…and 12 more lines"). Linear in the text's length.
func esc(s string, n int, keepNewlines bool) string {
	s = bot.Printable(s, keepNewlines)
	if !keepNewlines {
		return escLine(s, n)
	}
	lines := strings.Split(s, "\n")
	size := -1 // no newline before the first line
	for k, l := range lines {
		lines[k] = bot.EscapeSlack(l)
		size += runes(lines[k]) + 1
		if size > n {
			// Keep the most leading lines that fit with the tail, else cut one line.
			if keep, _ := bot.FitLines(lines, n); keep > 0 { // reads lines[:k+1] only, all escaped
				return strings.Join(lines[:keep], "\n") + "\n" + bot.AndMore(len(lines)-keep) + " lines"
			}
			return escLine(l, n)
		}
	}
	return strings.Join(lines, "\n")
}

// escLine escapes one line and cuts it to n runes after escaping.
func escLine(s string, n int) string {
	k := n
	for {
		e := bot.EscapeSlack(bot.Clip(s, k))
		if over := runes(e) - n; over > 0 && k > 1 {
			k = max(1, k-over)
			continue
		}
		return e
	}
}

// plain is text for plain_text objects (shown as typed: no escaping needed).
func plain(s string, n int) string { return bot.Clip(bot.Printable(s, false), n) }

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// maxBodySections bounds how many sections a long text (the help, a long report)
// takes: it is shown whole up to this many, then cut by whole lines.
const maxBodySections = 8

// bodyBlocks renders a message's free text as sections of at most 3,000 runes each,
// split between lines, so a text longer than one section is shown whole instead of
// cut at 3,000. It also returns the escaped text (for the notification fallback).
func bodyBlocks(text string) ([]slack.Block, string) {
	body := strings.TrimSpace(esc(strings.TrimRight(text, "\n"), maxBodySections*maxSectionText, true))
	if body == "" {
		return nil, ""
	}
	if runes(body) <= maxSectionText {
		return []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, nil)}, body
	}
	var out []slack.Block
	var cur []string
	size := 0
	flush := func() {
		if t := strings.TrimSpace(strings.Join(cur, "\n")); t != "" {
			out = append(out, slack.NewSectionBlock(mrkdwn(t), nil, nil))
		}
		cur, size = nil, 0
	}
	for _, l := range strings.Split(body, "\n") {
		if runes(l) > maxSectionText {
			l = clipEscaped(l, maxSectionText)
		}
		if size > 0 && size+runes(l)+1 > maxSectionText {
			flush()
		}
		cur = append(cur, l)
		size += runes(l) + 1
	}
	flush()
	return out, body
}

// clipEscaped cuts an escaped line to n runes without leaving half an entity
// (&amp; &lt; &gt;) at its end.
func clipEscaped(l string, n int) string {
	r := []rune(l)
	if len(r) <= n {
		return l
	}
	cut := string(r[:max(n-1, 0)])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ") + "…"
}

// joinFit joins lines into at most n runes, cutting whole lines and saying how
// many: "…and 185 more".
func joinFit(lines []string, n int) string {
	total := strings.Join(lines, "\n")
	if runes(total) <= n {
		return total
	}
	for k := len(lines) - 1; k >= 1; k-- {
		s := strings.Join(lines[:k], "\n") + "\n" + bot.AndMore(len(lines)-k)
		if runes(s) <= n {
			return s
		}
	}
	return bot.Clip(total, n)
}

// render turns the neutral message into Block Kit within Slack's limits, and the
// plain notification text that goes with it.
func render(m bot.Message) ([]slack.Block, string) {
	var blocks []slack.Block
	// Slack refuses empty texts: a part that is empty once made printable is left out.
	if t := strings.TrimSpace(plain(m.Title, maxHeaderText)); t != "" {
		blocks = append(blocks, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, t, true, false)))
	}
	if t := strings.TrimSpace(esc(m.Status, maxSectionText, false)); t != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(t), nil, nil))
	}
	bodyBs, body := bodyBlocks(m.Text)
	blocks = append(blocks, bodyBs...)
	if len(m.Fields) > 0 {
		var fs []*slack.TextBlockObject
		for i, f := range m.Fields {
			if i == maxFields {
				break
			}
			label := esc(f.Label, 200, false)
			fs = append(fs, mrkdwn("*"+label+"*\n"+esc(f.Value, maxFieldText-runes(label)-3, true)))
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fs, nil))
	}
	if len(m.List) > 0 {
		lines := make([]string, len(m.List))
		for i, item := range m.List {
			lines[i] = "• " + esc(item, 300, false)
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(joinFit(lines, maxSectionText)), nil, nil))
	}
	blocks = append(blocks, stepBlocks(m.Steps)...)
	if p := m.Progress; p != nil {
		lines := []string{}
		if l := p.Line(); l != "" {
			lines = append(lines, esc(l, 500, false))
		}
		for _, n := range p.Notes {
			lines = append(lines, esc(n, 500, false))
		}
		if len(lines) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn(joinFit(lines, maxSectionText)), nil, nil))
		}
	}
	if len(m.Context) > 0 {
		var els []slack.MixedElement
		for _, c := range bot.Fit(m.Context, maxContextItems) {
			if c = strings.TrimSpace(esc(c, maxSectionText, true)); c != "" {
				els = append(els, mrkdwn(c))
			}
		}
		if len(els) > 0 {
			blocks = append(blocks, slack.NewContextBlock("", els...))
		}
	}
	if bs := buttons(m.Buttons); len(bs) > 0 {
		blocks = append(blocks, slack.NewActionBlock("actions", bs...))
	}
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], slack.NewContextBlock("", mrkdwn(bot.AndMore(len(blocks)-(maxBlocks-1))+" parts")))
	}
	return blocks, fallbackText(m, body)
}

// fallbackText is the plain text Slack shows in notifications: the title and
// status, then the body; a message without a body falls back to its plain form.
// section is the body as the section block shows it: reused when it fits, so a long
// text is made printable and escaped once, not twice.
func fallbackText(m bot.Message, section string) string {
	var parts []string
	for _, p := range []string{m.Title, m.Status} {
		if p = strings.TrimSpace(esc(p, maxHeaderText, false)); p != "" {
			parts = append(parts, p)
		}
	}
	head := strings.Join(parts, " · ")
	body := m.Text
	if strings.TrimSpace(body) == "" && len(m.Steps)+len(m.Fields)+len(m.List)+len(m.Context) > 0 {
		body = bot.RenderTextWith(bot.Message{Fields: m.Fields, Steps: m.Steps, Progress: m.Progress, Context: m.Context}, Limits)
	}
	limit := maxFallback - runes(head) - 1
	switch {
	case section != "" && runes(section) <= limit:
		body = section
	default:
		body = strings.TrimSpace(esc(body, limit, true))
	}
	if body != "" {
		if head != "" {
			head += "\n"
		}
		head += body
	}
	if head == "" {
		return " "
	}
	return head
}

// stepBlocks puts the step list into sections of at most 3,000 runes each.
func stepBlocks(steps []bot.Step) []slack.Block {
	if len(steps) == 0 {
		return nil
	}
	var out []slack.Block
	var cur []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, slack.NewSectionBlock(mrkdwn(strings.Join(cur, "\n")), nil, nil))
			cur, size = nil, 0
		}
	}
	for i, s := range steps {
		s.Title = esc(s.Title, 300, false)
		s.Detail = esc(s.Detail, 600, false)
		s.ID = esc(s.ID, 100, false)
		line := bot.StepLine(s)
		if size+runes(line)+1 > maxSectionText {
			flush()
		}
		if len(out) == maxStepSections-1 && size+runes(line)+1 > maxSectionText-40 {
			cur = append(cur, fmt.Sprintf("%s steps", bot.AndMore(len(steps)-i)))
			break
		}
		cur = append(cur, line)
		size += runes(line) + 1
	}
	flush()
	return out
}

// buttons renders the live buttons (a disabled one is left out: Slack cannot grey
// a button, and a decided request must keep none that could be clicked).
func buttons(in []bot.Button) []slack.BlockElement {
	var out []slack.BlockElement
	for _, b := range in {
		if b.Disabled || len(out) == 5 {
			continue
		}
		label := strings.TrimSpace(plain(b.Label, maxButtonText))
		if label == "" {
			label = plain(b.ActionID, maxButtonText)
		}
		if b.ActionID == "" || label == "" {
			continue
		}
		btn := slack.NewButtonBlockElement(plain(b.ActionID, 255), bot.Clip(b.Value, maxButtonValue),
			slack.NewTextBlockObject(slack.PlainTextType, label, true, false))
		switch b.Style {
		case "primary":
			btn = btn.WithStyle(slack.StylePrimary)
		case "danger":
			btn = btn.WithStyle(slack.StyleDanger)
		}
		confirm := b.Confirm
		if strings.TrimSpace(confirm) == "" && b.ActionID == "deny" {
			confirm = "Deny this request? Secure communication stays on, and the rotation does not go on without a new request."
		}
		if strings.TrimSpace(plain(confirm, maxConfirmText)) != "" {
			btn = btn.WithConfirm(slack.NewConfirmationBlockObject(
				slack.NewTextBlockObject(slack.PlainTextType, plain(label+"?", maxConfirmTitle), false, false),
				slack.NewTextBlockObject(slack.PlainTextType, plain(confirm, maxConfirmText), false, false),
				slack.NewTextBlockObject(slack.PlainTextType, plain("Yes, "+strings.ToLower(label), maxConfirmBtn), false, false),
				slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
			))
		}
		out = append(out, btn)
	}
	return out
}

// liveVote reports whether m carries live approve/deny buttons: an open approval
// request, whose reactions are read again after a reconnect.
func liveVote(m bot.Message) bool {
	for _, b := range m.Buttons {
		if !b.Disabled && (b.ActionID == "approve" || b.ActionID == "deny") {
			return true
		}
	}
	return false
}

// ackPayload is a slash command's ephemeral answer carried by its ack, encoded once
// (the transports write it as is); ok is false when it is too large for an ack (it
// then goes by chat.postEphemeral). A long text-only answer (the help) is rendered
// once and kept: see staticAcks.
func ackPayload(m bot.Message) (json.RawMessage, bool) {
	static := textOnly(m) && len(m.Text) >= minStaticAck
	if static {
		if raw, ok := staticAcks.get(m); ok {
			return raw, raw != nil
		}
	}
	blocks, text := render(m)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the text is mrkdwn-escaped already (&lt; stays &lt;, not \u0026lt;)
	var raw json.RawMessage
	if err := enc.Encode(ephemeralAck{ResponseType: "ephemeral", Text: text, Blocks: blocks}); err == nil && buf.Len() < maxAckPayload {
		raw = bytes.TrimRight(buf.Bytes(), "\n")
	}
	if static {
		staticAcks.put(m, raw)
	}
	return raw, raw != nil
}

// minStaticAck is the text length from which an ack's rendering is kept for reuse:
// shorter answers (usage, refusals) are cheaper to render than to look up.
const minStaticAck = 1024

// textOnly says m has nothing but its text, visibility and placeholder flag.
func textOnly(m bot.Message) bool {
	return m.Title == "" && m.Status == "" && len(m.Fields) == 0 && len(m.List) == 0 && len(m.Steps) == 0 &&
		m.Progress == nil && len(m.Context) == 0 && len(m.Buttons) == 0
}

// ackCache keeps the encoded acks of a few long text-only answers: the same help
// text for every user is made printable, escaped and marshalled once. Bounded: it
// starts afresh when full.
type ackCache struct {
	mu      sync.Mutex
	entries map[ackKey]json.RawMessage // nil: too large for an ack
}

type ackKey struct {
	text        string
	visibility  bot.Visibility
	placeholder bool
}

const maxStaticAcks = 32

var staticAcks ackCache

func (c *ackCache) get(m bot.Message) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	raw, ok := c.entries[ackKey{m.Text, m.Visibility, m.Placeholder}]
	return raw, ok
}

func (c *ackCache) put(m bot.Message, raw json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxStaticAcks {
		c.entries = map[ackKey]json.RawMessage{}
	}
	c.entries[ackKey{m.Text, m.Visibility, m.Placeholder}] = raw
}

// ephemeralAck is the body of a slash command's answer.
type ephemeralAck struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}
