// Package bot is the conductor between chat and the runbook: the Platform interface
// every chat adapter implements, a platform-neutral message model and its plain-text
// renderer, the run card and its paced edits, and the router that turns chat events
// into engine calls (dedupe by delivery id, channel and role checks, parse, call,
// acknowledge at once and answer later). Adapters only translate.
package bot

import (
	"context"
	"strings"
	"time"
)

// Platform is one chat platform (console, Slack, Discord). Each method's contract:
type Platform interface {
	// Name is the platform's prefix in user keys, e.g. "console", "slack".
	Name() string
	// Post sends a new message to the channel and returns its reference (the id that
	// later edits, replies and reactions use; unique within the channel).
	Post(ctx context.Context, channel string, m Message) (ref string, err error)
	// Edit replaces the whole content of a message the bot posted: parts not in m
	// are gone. A decided approval request is edited this way to its verdict with
	// its buttons disabled (Discord greys them, Slack and the console drop them), so
	// it keeps no live buttons.
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
	// Respond answers the user who caused ev in ev's channel, for events that carry
	// no Reply handle: m.Visibility VisibleUser shows it to that user only (ephemeral;
	// never posted for the channel), VisibleChannel to everyone there.
	Respond(ctx context.Context, ev Event, m Message) error
}

// Reply is an event's reply handle: how to answer its user at once and later.
// Adapters whose platform has an answer deadline (Slack's and Discord's 3 s) set it
// on every event.
type Reply interface {
	// Ack answers at once, before any slow work: the answer itself when it is ready
	// (a refusal, usage, help), or a Placeholder message ("working on it") when the
	// real answer follows through Answer. The router calls it once per event, within
	// milliseconds of receiving it.
	Ack(ctx context.Context, m Message) error
	// Answer delivers the real answer after a placeholder Ack, honouring
	// m.Visibility (Slack: chat.postEphemeral or chat.postMessage with the bot token,
	// since response_url dies after 30 minutes; Discord: the deferred response's edit
	// or a followup within 15 minutes, else the channel).
	Answer(ctx context.Context, m Message) error
}

// Paced is implemented by platforms whose API limits how fast the bot may edit and
// post; the notifier paces every card and thread on that platform by it.
type Paced interface {
	Pacing() Pacing
}

// Pacing is a platform's rate limits as the notifier uses them.
type Pacing struct {
	// CardInterval is the least time between two edits of one card (--card-interval).
	CardInterval time.Duration
	// EditBudget edits per EditWindow are shared by every card on the platform
	// (Slack's chat.update: about 50 per minute per workspace); 0 means no shared
	// budget.
	EditBudget int
	EditWindow time.Duration
	// PostInterval is the least time between two posts in one channel (Slack's
	// chat.postMessage: 1 per second); milestones wait only for it.
	PostInterval time.Duration
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
	Reaction   string // emoji for reactions, e.g. "✅" or "white_check_mark"
	MessageRef string // message reacted to or clicked (unqualified, as the platform names it)
	ActionID   string // button action id
	Value      string // button value
	// Reply answers this event (nil: the router answers through Platform.Respond).
	Reply Reply
	// Recorded says the adapter already recorded this delivery durably before it
	// acknowledged it and keeps its redeliveries out (Slack's inbox record). The
	// router then answers what changes nothing (help, usage, refusals) without a
	// second commit, and records DeliveryID only when work for the engine follows,
	// after the placeholder ack: one commit before the platform's answer, and the
	// engine still acts at most once when the event is handed out again after a
	// restart.
	Recorded bool
}

// UserKey is the platform-qualified user key used in roles and the audit:
// "slack:U024BE7LH", "console:alice".
func (e Event) UserKey() string { return e.Platform + ":" + e.User }

// Home is where the event happened: where a rotation started by it lives.
func (e Event) Home() Home { return Home{Platform: e.Platform, Channel: e.Channel} }

// Ref is the qualified reference of the message the event is about.
func (e Event) Ref() Ref { return Ref{Platform: e.Platform, Channel: e.Channel, ID: e.MessageRef} }

// Home is where a rotation lives in chat: its card, thread and approval request.
// Its string form "platform|channel" is Rotation.Home in the store.
type Home struct {
	Platform, Channel string
}

// String is the stored form: "slack|C0123ABC".
func (h Home) String() string { return h.Platform + "|" + h.Channel }

// ParseHome reads a stored home; ok is false for "" or a malformed one.
func ParseHome(s string) (Home, bool) {
	p, c, ok := strings.Cut(s, "|")
	if !ok || p == "" || c == "" || strings.Contains(c, "|") {
		return Home{}, false
	}
	return Home{Platform: p, Channel: c}, true
}

// Ref is a message reference qualified by platform and channel (Slack timestamps are
// unique only per channel). Its string form "platform|channel|id" is what the engine
// stores for an approval request's messages.
type Ref struct {
	Platform, Channel, ID string
}

// String is the stored form: "slack|C0123ABC|1712345678.000100".
func (r Ref) String() string { return r.Platform + "|" + r.Channel + "|" + r.ID }

// Home is the platform and channel of the message.
func (r Ref) Home() Home { return Home{Platform: r.Platform, Channel: r.Channel} }

// ParseRef reads a stored reference; ok is false for a malformed one.
func ParseRef(s string) (Ref, bool) {
	p, rest, ok := strings.Cut(s, "|")
	if !ok {
		return Ref{}, false
	}
	c, id, ok := strings.Cut(rest, "|")
	if !ok || p == "" || c == "" || id == "" {
		return Ref{}, false
	}
	return Ref{Platform: p, Channel: c, ID: id}, true
}
