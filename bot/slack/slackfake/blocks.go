package slackfake

import (
	"encoding/json"
	"unicode/utf8"
)

// Block Kit limits Slack documents and refuses with invalid_blocks.
const (
	MaxBlocks         = 50
	MaxSectionText    = 3000
	MaxHeaderText     = 150
	MaxFields         = 10
	MaxFieldText      = 2000
	MaxButtonText     = 75
	MaxButtonValue    = 2000
	MaxActionID       = 255
	MaxActionElements = 25
	MaxContextItems   = 10
	MaxConfirmTitle   = 100
	MaxConfirmText    = 300
	MaxConfirmButton  = 30
)

type textObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type confirmObj struct {
	Title   *textObj `json:"title"`
	Text    *textObj `json:"text"`
	Confirm *textObj `json:"confirm"`
	Deny    *textObj `json:"deny"`
}

type element struct {
	Type     string      `json:"type"`
	Text     any         `json:"text"` // a text object for buttons, a string for context mrkdwn
	ActionID string      `json:"action_id"`
	Value    string      `json:"value"`
	Style    string      `json:"style"`
	Confirm  *confirmObj `json:"confirm"`
}

type block struct {
	Type     string    `json:"type"`
	Text     *textObj  `json:"text"`
	Fields   []textObj `json:"fields"`
	Elements []element `json:"elements"`
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// validateBlocks parses a blocks form value and checks it against the limits; it
// returns the compact JSON (nil for none) or the Slack error code.
func validateBlocks(raw string) (json.RawMessage, string) {
	if raw == "" {
		return nil, ""
	}
	var bs []block
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		return nil, "invalid_blocks_format"
	}
	if len(bs) > MaxBlocks {
		return nil, "invalid_blocks"
	}
	for _, b := range bs {
		if !validBlock(b) {
			return nil, "invalid_blocks"
		}
	}
	return json.RawMessage(raw), ""
}

func validBlock(b block) bool {
	switch b.Type {
	case "header":
		return b.Text != nil && b.Text.Type == "plain_text" && b.Text.Text != "" && runes(b.Text.Text) <= MaxHeaderText
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return false
		}
		if b.Text != nil && (b.Text.Text == "" || runes(b.Text.Text) > MaxSectionText) {
			return false
		}
		if len(b.Fields) > MaxFields {
			return false
		}
		for _, f := range b.Fields {
			if f.Text == "" || runes(f.Text) > MaxFieldText {
				return false
			}
		}
		return true
	case "divider":
		return true
	case "context":
		if len(b.Elements) == 0 || len(b.Elements) > MaxContextItems {
			return false
		}
		for _, e := range b.Elements {
			s, ok := e.Text.(string)
			if e.Type != "mrkdwn" && e.Type != "plain_text" || !ok || s == "" || runes(s) > MaxSectionText {
				return false
			}
		}
		return true
	case "actions":
		if len(b.Elements) == 0 || len(b.Elements) > MaxActionElements {
			return false
		}
		for _, e := range b.Elements {
			if !validButton(e) {
				return false
			}
		}
		return true
	}
	return false // the bot uses no other block type
}

func validButton(e element) bool {
	if e.Type != "button" {
		return false
	}
	raw, _ := json.Marshal(e.Text)
	var t textObj
	if json.Unmarshal(raw, &t) != nil || t.Type != "plain_text" || t.Text == "" || runes(t.Text) > MaxButtonText {
		return false
	}
	if e.ActionID == "" || runes(e.ActionID) > MaxActionID || runes(e.Value) > MaxButtonValue {
		return false
	}
	if e.Style != "" && e.Style != "primary" && e.Style != "danger" {
		return false
	}
	if c := e.Confirm; c != nil {
		ok := func(t *textObj, n int) bool { return t != nil && t.Text != "" && runes(t.Text) <= n }
		if !ok(c.Title, MaxConfirmTitle) || !ok(c.Text, MaxConfirmText) || !ok(c.Confirm, MaxConfirmButton) || !ok(c.Deny, MaxConfirmButton) {
			return false
		}
	}
	return true
}

// Button is one button found in a message's blocks.
type Button struct {
	ActionID, Value, Text, Style string
	Confirm                      string // the confirmation dialog's text, "" for none
}

// Buttons lists the buttons of a message's blocks, in order.
func Buttons(blocks json.RawMessage) []Button {
	var bs []block
	_ = json.Unmarshal(blocks, &bs)
	var out []Button
	for _, b := range bs {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			raw, _ := json.Marshal(e.Text)
			var t textObj
			_ = json.Unmarshal(raw, &t)
			btn := Button{ActionID: e.ActionID, Value: e.Value, Text: t.Text, Style: e.Style}
			if e.Confirm != nil && e.Confirm.Text != nil {
				btn.Confirm = e.Confirm.Text.Text
			}
			out = append(out, btn)
		}
	}
	return out
}

// BlockText is every text of a message's blocks joined by newlines: what a reader
// sees, for assertions.
func BlockText(blocks json.RawMessage) string {
	var bs []block
	_ = json.Unmarshal(blocks, &bs)
	var s string
	add := func(t string) {
		if t != "" {
			s += t + "\n"
		}
	}
	for _, b := range bs {
		if b.Text != nil {
			add(b.Text.Text)
		}
		for _, f := range b.Fields {
			add(f.Text)
		}
		if b.Type == "context" {
			for _, e := range b.Elements {
				if t, ok := e.Text.(string); ok {
					add(t)
				}
			}
		}
	}
	return s
}
