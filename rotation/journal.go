package rotation

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"sepmbot/store"
)

// The change journal: before the engine changes anything in SEPM it commits an
// intent (target, field, old value, new value); after SEPM confirmed the change by
// read-back it commits the result. Reverts and aborts are built from the journal,
// what was actually touched, never from step status; a record without a result is a
// change that may have happened (the process died between the PATCH and the commit)
// and is settled by reading SEPM.

// Journal fields.
const (
	FieldSecure = "secure_communications" // "true" / "false"
	FieldMSL    = "msl"                   // the assigned management server list's name
)

// Journal states.
const (
	JournalIntent   = "intent"    // committed before the PATCH; outcome unknown
	JournalApplied  = "applied"   // SEPM confirmed the new value by read-back
	JournalRefused  = "refused"   // SEPM refused the change (4xx): not applied
	JournalNotTaken = "not-taken" // an intent whose PATCH never landed (seen after a restart)
)

// JournalRecord is one SEPM change of a rotation.
type JournalRecord struct {
	Key        string    `json:"-"`
	Seq        uint64    `json:"seq"`
	Rotation   string    `json:"rotation"`
	Step       string    `json:"step"`
	GroupID    string    `json:"group_id"`
	LocationID string    `json:"location_id"`
	Path       string    `json:"path"`
	Field      string    `json:"field"`
	Old        string    `json:"old"`
	New        string    `json:"new"`
	State      string    `json:"state"`
	Intent     time.Time `json:"intent_at"`
	Result     time.Time `json:"result_at,omitzero"`
	Detail     string    `json:"detail,omitempty"`
}

// TargetKey is "group/location".
func (j JournalRecord) TargetKey() string { return j.GroupID + "/" + j.LocationID }

func journalPrefix(rot string) string { return rot + "\x00" }

// journalIntentTx appends an intent record and returns it with its key.
func journalIntentTx(tx *store.Tx, rec JournalRecord) (JournalRecord, error) {
	seq, err := tx.NextSeq(store.BucketJournal)
	if err != nil {
		return rec, fmt.Errorf("journal: %w", err)
	}
	rec.Seq, rec.State = seq, JournalIntent
	rec.Key = journalPrefix(rec.Rotation) + fmt.Sprintf("%020d", seq)
	return rec, putJournalTx(tx, rec)
}

func putJournalTx(tx *store.Tx, rec JournalRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal: encode: %w", err)
	}
	if err := tx.Put(store.BucketJournal, rec.Key, raw); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// journalResultTx records the outcome of an intent.
func journalResultTx(tx *store.Tx, rec JournalRecord, state, detail string, at time.Time) error {
	rec.State, rec.Detail, rec.Result = state, detail, at
	return putJournalTx(tx, rec)
}

// loadJournalTx returns a rotation's records in order.
func loadJournalTx(tx *store.Tx, rot string) ([]JournalRecord, error) {
	var out []JournalRecord
	err := tx.ForEachPrefix(store.BucketJournal, journalPrefix(rot), func(k string, v []byte) error {
		var rec JournalRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("journal %s: decode: %w", k, err)
		}
		rec.Key = k
		out = append(out, rec)
		return nil
	})
	return out, err
}

// touched reports what the journal says may have changed: every record but those
// SEPM refused or that never landed.
func touched(recs []JournalRecord) Touched {
	var t Touched
	for _, j := range recs {
		if j.State == JournalRefused || j.State == JournalNotTaken {
			continue
		}
		switch j.Field {
		case FieldSecure:
			t.Secure = true
		case FieldMSL:
			t.MSL = true
		}
	}
	return t
}

// original is a target's value before the rotation first touched it.
type original struct {
	GroupID, LocationID, Path, Value string
}

// originals returns, per field and target key, the value the first record that may
// have changed it found. Only targets the rotation may have changed are listed.
func originals(recs []JournalRecord, field string) map[string]original {
	out := map[string]original{}
	for _, j := range recs {
		if j.Field != field || j.State == JournalRefused || j.State == JournalNotTaken {
			continue
		}
		if _, ok := out[j.TargetKey()]; !ok {
			out[j.TargetKey()] = original{GroupID: j.GroupID, LocationID: j.LocationID, Path: j.Path, Value: j.Old}
		}
	}
	return out
}

// expectation is what the bot believes a field holds now: one value, or either of
// two while a change's outcome is unknown.
type expectation struct {
	Value, Or string
	Known     bool // the journal has a record for the target
}

func (x expectation) matches(v string) bool {
	return v == x.Value || (x.Or != "" && v == x.Or)
}

// expected returns, per field and target key, what the journal says SEPM holds.
func expected(recs []JournalRecord) map[string]expectation {
	out := map[string]expectation{}
	for _, j := range recs {
		k := j.Field + " " + j.TargetKey()
		switch j.State {
		case JournalApplied:
			out[k] = expectation{Value: j.New, Known: true}
		case JournalIntent:
			out[k] = expectation{Value: j.New, Or: j.Old, Known: true}
		}
	}
	return out
}

func boolString(b bool) string { return strconv.FormatBool(b) }
