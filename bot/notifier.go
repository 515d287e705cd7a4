package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"sepmbot/rotation"
	"sepmbot/store"
)

// Store keys of the notifier (meta bucket), so a restarted bot edits the same card
// and can still mark a decided request.
func cardKey(id string) string                 { return "card:" + id }
func requestKey(reqID string) string           { return "approval-messages:" + reqID }
func decidedKey(reqID string) string           { return "approval-decided:" + reqID }
func messageKey(ref string) string             { return "approval-message:" + ref }
func legacyCardKey(platform, id string) string { return "card:" + platform + ":" + id }

// Outlet is one platform the notifier shows rotations on.
type Outlet struct {
	Platform Platform
	// DefaultChannel is where a rotation with no recorded home lives (one stored by
	// an older version); only the first outlet's is used.
	DefaultChannel string
	// Pacing: zero fields come from the platform (Paced), then from defaults.
	Pacing Pacing
	// Mirror also posts the approval requests of rotations that live on another
	// platform into DefaultChannel, so approvers there see them; votes there count
	// only from accounts linked to the home platform (--link).
	Mirror bool
}

// outlet is an Outlet at work: its card edits and its posts, each paced.
type outlet struct {
	p       Platform
	channel string // DefaultChannel
	mirror  bool
	co      *Coalescer
	posts   *Poster
	pacing  Pacing
}

// Notifier implements rotation.Notifier on one or more platforms. Each rotation
// lives at its home (Rotation.Home, "platform|channel"): one run card there, edited
// in place through that platform's Coalescer (newest state wins, the edit budget
// shared by every card), thread replies under it in order, paced only by the
// channel's post limit, and the approval request, which is edited to its verdict
// once decided.
type Notifier struct {
	db       *store.DB
	log      *slog.Logger
	now      func() time.Time
	outs     map[string]*outlet
	fallback Home

	mu        sync.Mutex
	cards     map[string]Ref       // rotation id -> card (cache of the store)
	homes     map[string]Home      // rotation id -> home, from the views seen
	shown     map[string]string    // rotation id -> text of the last card submitted
	seen      map[string]time.Time // rotation id -> Rotation.Updated of the newest view shown
	requests  map[string][]Ref     // approval request id -> its messages
	homeOfRef map[string]Home      // approval request message -> its rotation's home
	decided   map[string]bool      // approval request id -> its messages show the verdict
}

// staleWindow bounds how much older than the newest view shown a view may be and
// still be dropped as stale: concurrent Updates race by milliseconds, while a wall
// clock stepped back further must not freeze the card.
const staleWindow = time.Minute

// Default pacing where neither the caller nor the platform says.
const (
	defaultCardInterval = 10 * time.Second
)

// NewNotifier returns a notifier on the given outlets (at least one).
func NewNotifier(db *store.DB, log *slog.Logger, outs ...Outlet) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{db: db, log: log, now: time.Now, outs: map[string]*outlet{},
		cards: map[string]Ref{}, homes: map[string]Home{}, shown: map[string]string{}, seen: map[string]time.Time{},
		requests: map[string][]Ref{}, homeOfRef: map[string]Home{}, decided: map[string]bool{}}
	for i, o := range outs {
		pc := o.Pacing
		if pp, ok := o.Platform.(Paced); ok {
			def := pp.Pacing()
			if pc.CardInterval <= 0 {
				pc.CardInterval = def.CardInterval
			}
			if pc.EditBudget <= 0 {
				pc.EditBudget, pc.EditWindow = def.EditBudget, def.EditWindow
			}
			if pc.PostInterval <= 0 {
				pc.PostInterval = def.PostInterval
			}
		}
		if pc.CardInterval <= 0 {
			pc.CardInterval = defaultCardInterval
		}
		name := o.Platform.Name()
		ol := &outlet{p: o.Platform, channel: o.DefaultChannel, mirror: o.Mirror, pacing: pc, posts: NewPoster(pc.PostInterval, log)}
		if ol.channel == "" {
			ol.channel = "sepm"
		}
		ol.co = NewCoalescer(pc.CardInterval, pc.EditBudget, pc.EditWindow, func(ctx context.Context, key string, m Message) error {
			return n.editKey(ctx, ol, key, m)
		}, log)
		n.outs[name] = ol
		if i == 0 {
			ch := o.DefaultChannel
			if ch == "" {
				ch = "sepm"
			}
			n.fallback = Home{Platform: name, Channel: ch}
		}
	}
	return n
}

// Close sends the queued posts and flushes pending card edits.
func (n *Notifier) Close() {
	for _, o := range n.outs {
		o.posts.Close()
	}
	for _, o := range n.outs {
		o.co.Close()
	}
}

// editKey makes one paced edit: "card:R1" is a rotation's run card, "msg:REF" any
// other message (a decided approval request).
func (n *Notifier) editKey(ctx context.Context, o *outlet, key string, m Message) error {
	var ref Ref
	switch {
	case strings.HasPrefix(key, "card:"):
		id := strings.TrimPrefix(key, "card:")
		r, err := n.cardRef(ctx, id)
		if err != nil || r.ID == "" {
			return fmt.Errorf("no card for %s: %w", id, err)
		}
		ref = r
	case strings.HasPrefix(key, "msg:"):
		r, ok := ParseRef(strings.TrimPrefix(key, "msg:"))
		if !ok {
			return fmt.Errorf("bad message key %q", key)
		}
		ref = r
	default:
		return fmt.Errorf("bad edit key %q", key)
	}
	return o.p.Edit(ctx, ref.Channel, ref.ID, m)
}

// home is where rotation v lives; it remembers it for Post.
func (n *Notifier) home(v rotation.View) Home {
	h, ok := ParseHome(v.Rotation.Home)
	if !ok || n.outs[h.Platform] == nil {
		if ok {
			n.log.Warn("rotation home on a platform not running; showing it on the default", "rotation", v.Rotation.ID, "home", v.Rotation.Home)
		}
		h = n.fallback
	}
	n.mu.Lock()
	n.homes[v.Rotation.ID] = h
	n.mu.Unlock()
	return h
}

// homeOf is where rotation id lives, as far as the notifier knows.
func (n *Notifier) homeOf(ctx context.Context, id string) Home {
	n.mu.Lock()
	h, ok := n.homes[id]
	n.mu.Unlock()
	if ok {
		return h
	}
	if ref, err := n.cardRef(ctx, id); err == nil && ref.ID != "" && n.outs[ref.Platform] != nil {
		return ref.Home()
	}
	return n.fallback
}

func (n *Notifier) cardRef(ctx context.Context, id string) (Ref, error) {
	n.mu.Lock()
	ref, ok := n.cards[id]
	n.mu.Unlock()
	if ok {
		return ref, nil
	}
	err := n.db.View(ctx, func(tx *store.Tx) error {
		if r, ok := ParseRef(string(tx.Get("meta", cardKey(id)))); ok {
			ref = r
			return nil
		}
		if old := string(tx.Get("meta", legacyCardKey(n.fallback.Platform, id))); old != "" {
			ref = Ref{Platform: n.fallback.Platform, Channel: n.fallback.Channel, ID: old}
		}
		return nil
	})
	if err != nil {
		return Ref{}, fmt.Errorf("reading card ref: %w", err)
	}
	if ref.ID != "" {
		n.mu.Lock()
		n.cards[id] = ref
		n.mu.Unlock()
	}
	return ref, nil
}

// Update shows the rotation's state on its card, posting the card the first time,
// and turns a decided approval request into its verdict.
func (n *Notifier) Update(ctx context.Context, v rotation.View) {
	id := v.Rotation.ID
	now := n.now()
	home := n.home(v)
	o := n.outs[home.Platform]
	msg := RenderCard(v, now)
	text := RenderText(msg)

	n.mu.Lock()
	if upd := v.Rotation.Updated; !upd.IsZero() {
		if newest := n.seen[id]; upd.Before(newest) && newest.Sub(upd) <= staleWindow {
			n.mu.Unlock()
			return // read before the state already shown, by a concurrent caller
		}
		n.seen[id] = upd
	}
	n.mu.Unlock()

	if ApprovalDecided(v, now) {
		n.markDecided(ctx, v, now)
	}

	ref, _ := n.cardRef(ctx, id)
	if ref.ID == "" {
		n.postCard(ctx, o, home, id, msg, text)
		return
	}
	n.mu.Lock()
	same := n.shown[id] == text
	n.shown[id] = text
	n.mu.Unlock()
	if same {
		return // nothing new to show
	}
	if ro := n.outs[ref.Platform]; ro != nil {
		ro.co.Submit("card:"+id, msg)
	}
}

// postCard posts a rotation's first card (in order with its channel's posts) and
// records where it is. A concurrent first Update finds the card posted when its turn
// comes and edits it instead.
func (n *Notifier) postCard(ctx context.Context, o *outlet, home Home, id string, msg Message, text string) {
	postedNow := false
	err := o.posts.Do(ctx, home.Channel, func(ctx context.Context) error {
		if ref, _ := n.cardRef(ctx, id); ref.ID != "" {
			return nil // posted meanwhile by a concurrent Update
		}
		newRef, err := o.p.Post(ctx, home.Channel, msg)
		if err != nil {
			return fmt.Errorf("posting run card of %s: %w", id, err)
		}
		ref := Ref{Platform: home.Platform, Channel: home.Channel, ID: newRef}
		n.mu.Lock()
		n.cards[id] = ref
		n.shown[id] = text
		n.mu.Unlock()
		postedNow = true
		if err := n.db.Update(ctx, func(tx *store.Tx) error {
			return tx.Put("meta", cardKey(id), []byte(ref.String()))
		}); err != nil {
			n.log.Warn("saving run card ref", "rotation", id, "err", err)
		}
		return nil
	})
	if err != nil {
		n.log.Warn("run card", "rotation", id, "err", err)
		return
	}
	if postedNow {
		return
	}
	n.mu.Lock()
	same := n.shown[id] == text
	n.shown[id] = text
	n.mu.Unlock()
	if !same {
		o.co.Submit("card:"+id, msg)
	}
}

// Post adds text to the rotation's thread (top level when it has no card yet). It
// returns at once: the post is queued in order behind the channel's earlier posts.
func (n *Notifier) Post(ctx context.Context, id, text string) {
	home := n.homeOf(ctx, id)
	o := n.outs[home.Platform]
	o.posts.Go(home.Channel, func(ctx context.Context) error {
		if ref, err := n.cardRef(ctx, id); err == nil && ref.ID != "" {
			_, err := o.p.Reply(ctx, ref.Channel, ref.ID, Message{Text: text})
			return err
		}
		_, err := o.p.Post(ctx, home.Channel, Message{Text: id + ": " + text})
		return err
	})
}

// RequestApproval posts the approval request at the rotation's home, in order with
// its thread, and on every mirroring outlet of another platform; seeds each with ✅
// and ❌; and returns the qualified reference of every message that carries it.
func (n *Notifier) RequestApproval(ctx context.Context, v rotation.View) ([]string, error) {
	home := n.home(v)
	m := RenderApprovalRequest(v)
	ref, err := n.postRequest(ctx, n.outs[home.Platform], home.Channel, m)
	if err != nil {
		return nil, fmt.Errorf("posting approval request: %w", err)
	}
	refs := []Ref{ref}
	for name, o := range n.outs {
		if !o.mirror || name == home.Platform {
			continue
		}
		mirror := m
		mirror.Context = append(append([]string(nil), m.Context...), fmt.Sprintf("%s lives on %s; a vote here counts only from an account linked to it (--link).", v.Rotation.ID, home.Platform))
		r, err := n.postRequest(ctx, o, o.channel, mirror)
		if err != nil {
			n.log.Warn("mirroring the approval request", "platform", name, "err", err)
			continue
		}
		refs = append(refs, r)
	}
	if a := v.Approval; a != nil && a.ID != "" {
		for _, r := range refs {
			n.rememberRequest(ctx, a.ID, r, home)
		}
	}
	n.Post(ctx, v.Rotation.ID, fmt.Sprintf("🔐 approval requested: react ✅ or ❌ on message %s, or click its buttons", ref.ID))
	return refStrings(refs), nil
}

// postRequest posts one copy of the approval request, in order with the channel's
// posts, and seeds it with the voting reactions.
func (n *Notifier) postRequest(ctx context.Context, o *outlet, channel string, m Message) (Ref, error) {
	var ref Ref
	err := o.posts.Do(ctx, channel, func(ctx context.Context) error {
		id, err := o.p.Post(ctx, channel, m)
		if err != nil {
			return err
		}
		ref = Ref{Platform: o.p.Name(), Channel: channel, ID: id}
		return nil
	})
	if err != nil {
		return Ref{}, err
	}
	for _, emoji := range []string{EmojiApprove, EmojiDeny} {
		if err := o.p.React(ctx, ref.Channel, ref.ID, emoji); err != nil {
			n.log.Warn("seeding the approval reactions", "err", err)
		}
	}
	return ref, nil
}

// rememberRequest records that message ref carries approval request reqID of a
// rotation living at home.
func (n *Notifier) rememberRequest(ctx context.Context, reqID string, ref Ref, home Home) {
	n.mu.Lock()
	refs := append(n.requests[reqID], ref)
	n.requests[reqID] = refs
	n.homeOfRef[ref.String()] = home
	n.mu.Unlock()
	raw, _ := json.Marshal(refStrings(refs))
	if err := n.db.Update(ctx, func(tx *store.Tx) error {
		if err := tx.Put("meta", messageKey(ref.String()), []byte(home.String())); err != nil {
			return err
		}
		return tx.Put("meta", requestKey(reqID), raw)
	}); err != nil {
		n.log.Warn("saving approval request refs", "request", reqID, "err", err)
	}
}

func refStrings(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

// markDecided edits every message of a decided request to its verdict, once.
func (n *Notifier) markDecided(ctx context.Context, v rotation.View, now time.Time) {
	reqID := v.Approval.ID
	n.mu.Lock()
	done := n.decided[reqID]
	refs := n.requests[reqID]
	n.decided[reqID] = true
	n.mu.Unlock()
	if done || reqID == "" {
		return
	}
	var already bool
	_ = n.db.View(ctx, func(tx *store.Tx) error {
		already = tx.Get("meta", decidedKey(reqID)) != nil
		if len(refs) == 0 {
			var stored []string
			if raw := tx.Get("meta", requestKey(reqID)); raw != nil && json.Unmarshal(raw, &stored) == nil {
				for _, s := range stored {
					if r, ok := ParseRef(s); ok {
						refs = append(refs, r)
					}
				}
			}
		}
		return nil
	})
	if already || len(refs) == 0 {
		return
	}
	m := RenderApprovalDecided(v, now)
	for _, r := range refs {
		if o := n.outs[r.Platform]; o != nil {
			o.co.Submit("msg:"+r.String(), m)
		}
	}
	if err := n.db.Update(ctx, func(tx *store.Tx) error { return tx.Put("meta", decidedKey(reqID), []byte("1")) }); err != nil {
		n.log.Warn("saving approval verdict shown", "request", reqID, "err", err)
	}
}

// ApprovalHome reports whether ref (qualified) carries an approval request the
// notifier posted, and the home of its rotation.
func (n *Notifier) ApprovalHome(ctx context.Context, ref string) (Home, bool) {
	n.mu.Lock()
	h, ok := n.homeOfRef[ref]
	n.mu.Unlock()
	if ok {
		return h, true
	}
	_ = n.db.View(ctx, func(tx *store.Tx) error {
		h, ok = ParseHome(string(tx.Get("meta", messageKey(ref))))
		return nil
	})
	return h, ok
}
