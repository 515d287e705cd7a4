package slack

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"sepmbot/bot"
	"sepmbot/store"
)

// Approve reactions seen on open approval requests. Removing a ✅ withdraws that
// person's approval (the router's reading of reaction_removed); a removal made
// while Socket Mode was down sends no event, so the adapter keeps, per open
// request, the approve reactions it last knew of ("user/name" pairs): from the
// live events (written in the same commit as their inbox record) and from each
// reconciliation's reactions.get. After a reconnect, a pair it knew of that
// reactions.get no longer shows is handed to the router as a reaction_removed.
const reactorsPrefix = "slack-approve-reactions:"

// reactorsKey is the meta key of a request's known approve reactions.
func reactorsKey(channel, ts string) string { return reactorsPrefix + channel + "/" + ts }

// isApproveName says a Slack reaction name is an approve vote.
func isApproveName(name string) bool { return reactionText(name) == bot.EmojiApprove }

func readReactors(tx *store.Tx, channel, ts string) []string {
	var pairs []string
	if raw := tx.Get(store.BucketMeta, reactorsKey(channel, ts)); raw != nil {
		_ = json.Unmarshal(raw, &pairs) // unreadable: as if none were known
	}
	return pairs
}

func writeReactors(tx *store.Tx, channel, ts string, pairs []string) error {
	if len(pairs) == 0 {
		return tx.Delete(store.BucketMeta, reactorsKey(channel, ts))
	}
	slices.Sort(pairs)
	raw, err := json.Marshal(slices.Compact(pairs))
	if err != nil {
		return err
	}
	return tx.Put(store.BucketMeta, reactorsKey(channel, ts), raw)
}

// noteReaction updates the known approve reactions of an open request for one
// recorded reaction event, inside the transaction that records it. Reactions on
// other messages, and other emoji, are not kept.
func noteReaction(tx *store.Tx, e inEvent) error {
	kind := bot.EventKind(e.Kind)
	if (kind != bot.EventReactionAdded && kind != bot.EventReactionRemoved) || e.Name == "" || !isApproveName(e.Name) {
		return nil
	}
	if tx.Get(store.BucketMeta, requestPrefix+e.Channel+"/"+e.MessageRef) == nil {
		return nil // not an open approval request
	}
	pair := e.User + "/" + e.Name
	pairs := slices.DeleteFunc(readReactors(tx, e.Channel, e.MessageRef), func(p string) bool { return p == pair })
	if kind == bot.EventReactionAdded {
		pairs = append(pairs, pair)
	}
	return writeReactors(tx, e.Channel, e.MessageRef, pairs)
}

// reconcileRequest turns what reactions.get shows on one open request into
// deliveries for the router: first a reaction_removed for every approve reaction
// the adapter knew of that is gone, then a reaction_added for every vote reaction
// there now; and it keeps what it saw as the known reactions. Removals are keyed by
// the reconciliation (a later re-add and removal is a new one); additions by
// (message, user, name), so each counts once. A live reaction recorded between
// reactions.get and this write is left out of the known set until the next
// reconciliation reads it again (a narrow window, right after a reconnect).
func (a *Adapter) reconcileRequest(ctx context.Context, ch, ts string, reactions []slack.ItemReaction) []*delivery {
	var now []string // approve pairs on the message now
	var added []*delivery
	for _, r := range reactions {
		text := reactionText(r.Name)
		if text != bot.EmojiApprove && text != bot.EmojiDeny {
			continue
		}
		for _, u := range r.Users {
			if u == a.botUser {
				continue
			}
			if text == bot.EmojiApprove {
				now = append(now, u+"/"+r.Name)
			}
			added = append(added, &delivery{silent: true, rec: record{
				Key: "rc/" + ch + "/" + ts + "/" + u + "/" + r.Name, Received: a.now(),
				Event: inEvent{Kind: int(bot.EventReactionAdded), User: u, Channel: ch, MessageRef: ts, Reaction: text, Name: r.Name},
			}})
		}
	}
	var removed []*delivery
	stamp := strconv.FormatInt(a.now().UnixNano(), 10)
	err := a.cfg.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		removed = removed[:0]
		for _, p := range readReactors(tx, ch, ts) {
			if slices.Contains(now, p) {
				continue
			}
			u, name, ok := strings.Cut(p, "/")
			if !ok {
				continue
			}
			removed = append(removed, &delivery{silent: true, rec: record{
				Key: "rc-removed/" + ch + "/" + ts + "/" + p + "/" + stamp, Received: a.now(),
				Event: inEvent{Kind: int(bot.EventReactionRemoved), User: u, Channel: ch, MessageRef: ts, Reaction: bot.EmojiApprove, Name: name},
			}})
		}
		return writeReactors(tx, ch, ts, slices.Clone(now))
	})
	if err != nil {
		// The known reactions stay as they were: the removals are found next time.
		a.log.Warn("slack: keeping the reactions seen on an approval request", "channel", ch, "ts", ts, "err", err)
		removed = nil
	}
	return append(removed, added...)
}
