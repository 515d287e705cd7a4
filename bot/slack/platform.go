package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"sepmbot/bot"
	"sepmbot/store"
)

// Post sends m to channel (chat.postMessage, paced at one a second per channel)
// and returns its ts.
func (a *Adapter) Post(ctx context.Context, channel string, m bot.Message) (string, error) {
	return a.post(ctx, channel, "", m)
}

// Reply posts m in the thread of ref.
func (a *Adapter) Reply(ctx context.Context, channel, ref string, m bot.Message) (string, error) {
	return a.post(ctx, channel, ref, m)
}

func (a *Adapter) post(ctx context.Context, channel, thread string, m bot.Message) (string, error) {
	blocks, text := render(m)
	opts := []slack.MsgOption{slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false)}
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	var ts string
	err := a.pace.post(ctx, channel, func() error {
		var err error
		_, ts, err = a.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("slack: chat.postMessage in %s: %w", channel, err)
	}
	if ts == "" {
		return "", errNoTS
	}
	if thread == "" && liveVote(m) {
		a.rememberRequest(ctx, channel, ts, true)
	}
	return ts, nil
}

// Edit replaces message ref (chat.update). Edits share the workspace's budget;
// of several edits of one message waiting, only the newest is sent.
func (a *Adapter) Edit(ctx context.Context, channel, ref string, m bot.Message) error {
	blocks, text := render(m)
	err := a.pace.edit(ctx, channel+"/"+ref, func() error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, channel, ref, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		return fmt.Errorf("slack: chat.update %s in %s: %w", ref, channel, err)
	}
	a.rememberRequest(ctx, channel, ref, liveVote(m))
	return nil
}

// React adds the bot's reaction (✅ → white_check_mark, ❌ → x).
func (a *Adapter) React(ctx context.Context, channel, ref, emoji string) error {
	name, ok := emojiName[emoji]
	if !ok {
		name = strings.Trim(emoji, ":")
	}
	err := a.api.AddReactionContext(ctx, name, slack.ItemRef{Channel: channel, Timestamp: ref})
	var se slack.SlackErrorResponse
	if err != nil && !(errors.As(err, &se) && se.Err == "already_reacted") && err.Error() != "already_reacted" {
		return fmt.Errorf("slack: reactions.add %s: %w", name, err)
	}
	return nil
}

// Pacing tells the notifier Slack's limits: every card on the workspace shares the
// chat.update budget; posts one a second per channel.
func (a *Adapter) Pacing() bot.Pacing {
	budget := a.cfg.EditBudget
	if budget <= 0 {
		budget = DefaultEditBudget
	}
	return bot.Pacing{
		CardInterval: a.cfg.CardInterval,
		EditBudget:   budget,
		EditWindow:   time.Duration(float64(EditWindow) * paceMargin),
		PostInterval: time.Duration(float64(PostInterval) * paceMargin),
	}
}

// Open approval requests are remembered in the store so their reactions can be
// read again after a reconnect, across restarts too; an entry older than
// requestKeep is dropped (no approval request stays open that long).
const (
	requestPrefix = "slack-open-request:"
	requestKeep   = 7 * 24 * time.Hour
)

func (a *Adapter) rememberRequest(ctx context.Context, channel, ts string, open bool) {
	key := requestPrefix + channel + "/" + ts
	a.mu.Lock()
	if a.open == nil {
		a.open = map[string]bool{}
		for _, r := range a.openRequests(ctx) {
			a.open[requestPrefix+r[0]+"/"+r[1]] = true
		}
	}
	if a.open[key] == open {
		a.mu.Unlock()
		return // a card edit: nothing to write
	}
	if open {
		a.open[key] = true
	} else {
		delete(a.open, key)
	}
	a.mu.Unlock()
	err := a.cfg.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		if open {
			return tx.Put(store.BucketMeta, key, []byte(a.now().UTC().Format(time.RFC3339)))
		}
		if err := tx.Delete(store.BucketMeta, reactorsKey(channel, ts)); err != nil {
			return err
		}
		return tx.Delete(store.BucketMeta, key)
	})
	if err != nil {
		a.log.Warn("slack: remembering an approval request", "err", err)
	}
}

// openRequests lists (channel, ts) of the approval requests with live buttons.
func (a *Adapter) openRequests(ctx context.Context) [][2]string {
	var out [][2]string
	var old []string
	_ = a.cfg.Store.View(ctx, func(tx *store.Tx) error {
		return tx.ForEach(store.BucketMeta, func(k string, v []byte) error {
			rest, ok := strings.CutPrefix(k, requestPrefix)
			if !ok {
				return nil
			}
			if t, err := time.Parse(time.RFC3339, string(v)); err == nil && a.now().Sub(t) > requestKeep {
				old = append(old, k)
				return nil
			}
			if ch, ts, ok := strings.Cut(rest, "/"); ok {
				out = append(out, [2]string{ch, ts})
			}
			return nil
		})
	})
	if len(old) > 0 {
		_ = a.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			for _, k := range old {
				if err := tx.Delete(store.BucketMeta, k); err != nil {
					return err
				}
				if err := tx.Delete(store.BucketMeta, reactorsPrefix+strings.TrimPrefix(k, requestPrefix)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return out
}

// reconcile reads the reactions on every open approval request again
// (reactions.get) and hands the votes among them to the router, so a vote made
// while the bot was away counts, and a ✅ removed while it was away withdraws that
// approval as a live removal would (see reconcileRequest). A vote already counted is refused by the engine
// as a repeat; those answers go nowhere (the person did nothing just now).
func (a *Adapter) reconcile(ctx context.Context) {
	for _, req := range a.openRequests(ctx) {
		ch, ts := req[0], req[1]
		item, err := a.api.GetReactionsContext(ctx, slack.ItemRef{Channel: ch, Timestamp: ts}, slack.GetReactionsParameters{Full: true})
		if err != nil {
			a.log.Warn("slack: reading reactions after a reconnect", "channel", ch, "ts", ts, "err", err)
			continue
		}
		ds := a.reconcileRequest(ctx, ch, ts, item.Reactions)
		a.ready.push(ds...)
	}
}
