// Package bot is the conductor between chat and the runbook: the Platform interface
// every chat adapter implements, a platform-neutral message model, the run card and
// its coalesced edits, and the router that turns chat events into engine calls
// (dedupe by delivery id, role check, parse, call). Adapters only translate.
package bot

import (
	"context"
)

// Platform is one chat platform (console, Slack, Discord). Each method's contract:
type Platform interface {
	// Name is the platform's prefix in user keys, e.g. "console", "slack".
	Name() string
	// Post sends a new message to the channel and returns its reference (the id that
	// later edits, replies and reactions use).
	Post(ctx context.Context, channel string, m Message) (ref string, err error)
	// Edit replaces the content of a message the bot posted.
	Edit(ctx context.Context, channel, ref string, m Message) error
	// Reply posts m in the thread of the message ref and returns the reply's reference.
	Reply(ctx context.Context, channel, ref string, m Message) (string, error)
	// React adds the bot's own reaction (an emoji such as "✅") to message ref; the bot
	// seeds the approval request with ✅ and ❌ so approvers only need to click them.
	React(ctx context.Context, channel, ref, emoji string) error
	// Events delivers inbound events until ctx is done; the channel is closed then.
	// Each event carries a delivery id that is unique per delivery attempt of the same
	// event (redeliveries repeat it), and an immutable user id.
	Events(ctx context.Context) <-chan Event
	// Respond answers the user who caused an event (ephemerally where the platform
	// can): command results, refusals, usage.
	Respond(ctx context.Context, ev Event, m Message) error
}

// Message is the platform-neutral content of a message. Each adapter renders it.
type Message struct {
	// Text is the body in a small markdown subset: *bold*, `code`, and line breaks.
	Text string
	// Buttons are actions under the message (approve/deny on an approval request).
	Buttons []Button
}

// Button is one clickable action. Value carries what the click means (e.g. the
// approval request nonce), ActionID what to do.
type Button struct {
	ActionID string // "approve" or "deny"
	Value    string
	Label    string
	Style    string // "primary", "danger" or ""
}

// EventKind says what happened in the chat.
type EventKind int

// Event kinds.
const (
	EventCommand EventKind = iota + 1
	EventReactionAdded
	EventReactionRemoved
	EventButton
)

// Event is one inbound chat event, verified by the adapter.
type Event struct {
	Kind       EventKind
	DeliveryID string   // for dedupe: the same event redelivered carries the same id
	Platform   string   // "console", "slack", "discord"
	User       string   // immutable platform user id (not a display name)
	UserGroups []string // group/role ids the user belongs to, as known to the adapter
	Channel    string
	Text       string // command text, e.g. "/sepm rotate site-a"
	Reaction   string // emoji for reactions, e.g. "✅"
	MessageRef string // message reacted to or clicked
	ActionID   string // button action id
	Value      string // button value
}

// UserKey is the platform-qualified user key used in roles and the audit:
// "slack:U024BE7LH", "console:alice".
func (e Event) UserKey() string { return e.Platform + ":" + e.User }
