package bot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sepmbot/rotation"
	"sepmbot/store"
)

// cardKey is where a rotation's run-card message reference is kept (meta bucket), so
// a restarted bot edits the same card.
func cardKey(platform, id string) string { return "card:" + platform + ":" + id }

// Notifier implements rotation.Notifier on one platform channel: one run card per
// rotation, edited in place through a Coalescer, and thread replies under it.
type Notifier struct {
	p       Platform
	channel string
	db      *store.DB
	co      *Coalescer
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	cards map[string]string    // rotation id -> card ref (cache of the store)
	last  map[string]string    // rotation id -> signature of the last shown step state
	shown map[string]string    // rotation id -> text of the last card submitted
	seen  map[string]time.Time // rotation id -> Rotation.Updated of the newest view shown
}

// staleWindow bounds how much older than the newest view shown a view may be and
// still be dropped as stale: concurrent Updates race by milliseconds, while a wall
// clock stepped back further must not freeze the card.
const staleWindow = time.Minute

// NewNotifier returns a notifier posting to channel on p; interval is the least time
// between two edits of one card.
func NewNotifier(p Platform, channel string, db *store.DB, interval time.Duration, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{p: p, channel: channel, db: db, log: log, now: time.Now, cards: map[string]string{}, last: map[string]string{}, shown: map[string]string{}, seen: map[string]time.Time{}}
	n.co = NewCoalescer(interval, func(ctx context.Context, id string, m Message) error {
		ref, err := n.cardRef(ctx, id)
		if err != nil || ref == "" {
			return fmt.Errorf("no card for %s: %w", id, err)
		}
		return p.Edit(ctx, channel, ref, m)
	}, log)
	return n
}

// Close flushes pending card edits.
func (n *Notifier) Close() { n.co.Close() }

func (n *Notifier) cardRef(ctx context.Context, id string) (string, error) {
	n.mu.Lock()
	ref, ok := n.cards[id]
	n.mu.Unlock()
	if ok {
		return ref, nil
	}
	err := n.db.View(ctx, func(tx *store.Tx) error {
		ref = string(tx.Get("meta", cardKey(n.p.Name(), id)))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("reading card ref: %w", err)
	}
	if ref != "" {
		n.mu.Lock()
		n.cards[id] = ref
		n.mu.Unlock()
	}
	return ref, nil
}

// signature identifies the step state a card shows, so that the first and last state
// of every step are marked important for the coalescer.
func signature(v rotation.View) string {
	r := v.Rotation
	s := fmt.Sprintf("%s/%d/%d", r.Status, r.Cursor, len(r.Plan.Steps))
	if _, st, ok := r.Current(); ok {
		s += "/" + st.Status + "/" + st.DoneBy
	}
	if v.Approval != nil {
		s += fmt.Sprintf("/%s/%d", v.Approval.State, len(v.Approval.Votes))
	}
	return s
}

// Update shows the rotation's state on its card, posting the card the first time.
func (n *Notifier) Update(ctx context.Context, v rotation.View) {
	id := v.Rotation.ID
	msg := RenderCard(v, n.now())
	n.mu.Lock()
	defer n.mu.Unlock()
	if upd := v.Rotation.Updated; !upd.IsZero() {
		if newest := n.seen[id]; upd.Before(newest) && newest.Sub(upd) <= staleWindow {
			return // read before the state already shown, by a concurrent caller
		}
		n.seen[id] = upd
	}
	ref, ok := n.cards[id]
	if !ok {
		n.mu.Unlock()
		ref, _ = n.cardRef(ctx, id)
		n.mu.Lock()
		if cached, ok := n.cards[id]; ok {
			ref = cached // another Update posted the card meanwhile
		}
	}
	if ref == "" {
		newRef, err := n.p.Post(ctx, n.channel, msg)
		if err != nil {
			n.log.Warn("posting run card", "rotation", id, "err", err)
			return
		}
		if err := n.db.Update(ctx, func(tx *store.Tx) error {
			return tx.Put("meta", cardKey(n.p.Name(), id), []byte(newRef))
		}); err != nil {
			n.log.Warn("saving run card ref", "rotation", id, "err", err)
		}
		n.cards[id] = newRef
		n.last[id] = signature(v)
		n.shown[id] = msg.Text
		return
	}
	if n.shown[id] == msg.Text {
		return // nothing new to show
	}
	n.shown[id] = msg.Text
	sig := signature(v)
	important := sig != n.last[id]
	n.last[id] = sig
	n.co.Submit(id, msg, important)
}

// Post replies in the rotation's thread (top level when it has no card yet).
func (n *Notifier) Post(ctx context.Context, id, text string) {
	ref, err := n.cardRef(ctx, id)
	if err == nil && ref != "" {
		if _, err := n.p.Reply(ctx, n.channel, ref, Message{Text: text}); err == nil {
			return
		}
	}
	if _, err := n.p.Post(ctx, n.channel, Message{Text: id + ": " + text}); err != nil {
		n.log.Warn("posting", "rotation", id, "err", err)
	}
}

// RequestApproval posts the approval request as its own message and returns its ref.
func (n *Notifier) RequestApproval(ctx context.Context, v rotation.View) ([]string, error) {
	ref, err := n.p.Post(ctx, n.channel, RenderApprovalRequest(v))
	if err != nil {
		return nil, fmt.Errorf("posting approval request: %w", err)
	}
	for _, emoji := range []string{EmojiApprove, EmojiDeny} {
		if err := n.p.React(ctx, n.channel, ref, emoji); err != nil {
			n.log.Warn("seeding the approval reactions", "err", err)
		}
	}
	if card, _ := n.cardRef(ctx, v.Rotation.ID); card != "" {
		if _, err := n.p.Reply(ctx, n.channel, card, Message{Text: fmt.Sprintf("🔐 approval requested: react ✅ or ❌ on message %s", ref)}); err != nil {
			n.log.Warn("replying", "err", err)
		}
	}
	return []string{ref}, nil
}
