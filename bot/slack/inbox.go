package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"sepmbot/store"
)

// DedupeTTL is how long an envelope's dedupe record is kept: Slack retries an
// unacknowledged delivery at once, after 1 minute and after 5 minutes, with the
// same event_id.
const DedupeTTL = 15 * time.Minute

// inboxPrefix keeps the adapter's records apart from other platforms' in the
// store's inbox bucket.
const inboxPrefix = "slack/"

// record is one inbound envelope as kept in the store: its dedupe key, when it
// arrived, whether the bot has answered it, and the event it carries (already
// verified and translated; no token, no response_url).
type record struct {
	Key      string    `json:"key"`
	Received time.Time `json:"received"`
	Handled  bool      `json:"handled,omitempty"`
	Event    inEvent   `json:"event"`
}

// inEvent is the platform part of a bot.Event, as stored.
type inEvent struct {
	Kind       int    `json:"kind"`
	User       string `json:"user"`
	Channel    string `json:"channel"`
	Text       string `json:"text,omitempty"`
	Reaction   string `json:"reaction,omitempty"`
	Name       string `json:"name,omitempty"` // the reaction's Slack name (white_check_mark)
	MessageRef string `json:"ref,omitempty"`
	ActionID   string `json:"action,omitempty"`
	Value      string `json:"value,omitempty"`
	Command    bool   `json:"command,omitempty"` // a slash command: its ack carries the answer
}

// inbox is the durable side of the intake: it records envelopes before they are
// acknowledged and says which ones were seen before.
type inbox interface {
	// record stores each record whose key is not already stored (within
	// DedupeTTL) in one durable commit; fresh[i] says whether recs[i] is new. The
	// same commit marks the records of done answered (see handled).
	record(ctx context.Context, recs []record, done []string) (fresh []bool, err error)
	// handled marks records answered, so a restart does not hand them out again.
	handled(ctx context.Context, keys []string) error
	// pending lists the records not yet answered, oldest first, and drops records
	// older than DedupeTTL.
	pending(ctx context.Context, now time.Time) ([]record, error)
}

// storeInbox keeps the records in the store's inbox bucket.
type storeInbox struct {
	db *store.DB
}

// handledSuffix marks a record answered: a key of its own (record key + suffix),
// so marking is one small write, not a decode and re-encode of the record.
const handledSuffix = "\x00handled"

func (s storeInbox) record(ctx context.Context, recs []record, done []string) ([]bool, error) {
	fresh := make([]bool, len(recs))
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		clear(fresh)
		seen := map[string]bool{}
		for i, r := range recs {
			key := inboxPrefix + r.Key
			if seen[key] {
				continue // the same envelope twice in one batch
			}
			seen[key] = true
			if old := tx.Get(store.BucketInbox, key); old != nil {
				var prev record
				if json.Unmarshal(old, &prev) == nil && r.Received.Sub(prev.Received) < DedupeTTL {
					continue
				}
				// Expired, not yet pruned: recorded afresh, not answered.
				if err := tx.Delete(store.BucketInbox, key+handledSuffix); err != nil {
					return err
				}
			}
			raw, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encoding %s: %w", r.Key, err)
			}
			if err := tx.Put(store.BucketInbox, key, raw); err != nil {
				return err
			}
			if err := noteReaction(tx, r.Event); err != nil {
				return fmt.Errorf("noting the reaction of %s: %w", r.Key, err)
			}
			fresh[i] = true
		}
		return markHandled(tx, done)
	})
	if err != nil {
		return nil, fmt.Errorf("slack: recording %d envelopes: %w", len(recs), err)
	}
	return fresh, nil
}

func (s storeInbox) handled(ctx context.Context, keys []string) error {
	if err := s.db.Update(ctx, func(tx *store.Tx) error { return markHandled(tx, keys) }); err != nil {
		return fmt.Errorf("slack: marking %d envelopes handled: %w", len(keys), err)
	}
	return nil
}

// markHandled marks the records of keys answered, in tx. A mark whose record was
// pruned meanwhile is dropped by the next pending.
func markHandled(tx *store.Tx, keys []string) error {
	for _, k := range keys {
		if err := tx.Put(store.BucketInbox, inboxPrefix+k+handledSuffix, nil); err != nil {
			return fmt.Errorf("marking %s handled: %w", k, err)
		}
	}
	return nil
}

func (s storeInbox) pending(ctx context.Context, now time.Time) ([]record, error) {
	var out []record
	var old []string
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		out, old = out[:0], old[:0]
		done := map[string]bool{}
		var live []record
		err := tx.ForEachPrefix(store.BucketInbox, inboxPrefix, func(k string, v []byte) error {
			if rec, ok := strings.CutSuffix(k, handledSuffix); ok {
				done[rec] = true
				return nil
			}
			var r record
			if json.Unmarshal(v, &r) != nil || now.Sub(r.Received) >= DedupeTTL {
				old = append(old, k, k+handledSuffix)
				return nil
			}
			if !r.Handled { // older files kept the mark in the record
				live = append(live, r)
			}
			return nil
		})
		for _, r := range live {
			if !done[inboxPrefix+r.Key] {
				out = append(out, r)
			}
		}
		for k := range done {
			if tx.Get(store.BucketInbox, k) == nil {
				old = append(old, k+handledSuffix) // its record is gone
			}
		}
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := tx.Delete(store.BucketInbox, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("slack: reading pending envelopes: %w", err)
	}
	slices.SortStableFunc(out, func(a, b record) int { return a.Received.Compare(b.Received) })
	return out, nil
}
