package ops

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"sepmbot/rotation"
	"sepmbot/store"
)

// Reader is what the export reads; *rotation.Engine implements it.
type Reader interface {
	Get(ctx context.Context, id string) (rotation.View, error)
	Audit(ctx context.Context, id string) ([]store.AuditRecord, error)
}

// Export is the change-management record of one rotation.
type Export struct {
	Rotation  string              `json:"rotation"`
	Site      string              `json:"site"`
	Requester string              `json:"requester"`
	Status    string              `json:"status"`
	Path      string              `json:"path"`
	Created   time.Time           `json:"created"`
	Updated   time.Time           `json:"updated"`
	Steps     []ExportStep        `json:"steps"`
	Votes     []ExportVote        `json:"votes"`
	Audit     []store.AuditRecord `json:"audit"`
	Exported  time.Time           `json:"exported"`
}

// ExportStep is one step of the plan and what became of it.
type ExportStep struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Broadcom string    `json:"broadcom_step,omitempty"`
	Action   string    `json:"action"`
	Server   string    `json:"server,omitempty"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	DoneBy   string    `json:"done_by,omitempty"`
	Note     string    `json:"note,omitempty"`
}

// ExportVote is one approval of the current request (every vote of every request,
// denials and refused votes included, is in Audit as a vote-* record).
type ExportVote struct {
	Request  string    `json:"request"`
	Approver string    `json:"approver"`
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
}

// Collect reads the rotation's record.
func Collect(ctx context.Context, r Reader, id string, now time.Time) (Export, error) {
	v, err := r.Get(ctx, id)
	if err != nil {
		return Export{}, err
	}
	recs, err := r.Audit(ctx, v.Rotation.ID)
	if err != nil {
		return Export{}, err
	}
	rot := v.Rotation
	ex := Export{Rotation: rot.ID, Site: rot.Site, Requester: rot.Requester, Status: rot.Status, Path: rot.Plan.Path,
		Created: rot.Created, Updated: rot.Updated, Audit: recs, Exported: now.UTC(), Steps: []ExportStep{}, Votes: []ExportVote{}}
	if ex.Audit == nil {
		ex.Audit = []store.AuditRecord{}
	}
	for i, ps := range rot.Plan.Steps {
		es := ExportStep{ID: ps.ID, Title: ps.Title, Broadcom: ps.SeedStep, Action: ps.Action, Server: ps.Server}
		if i < len(rot.Steps) {
			st := rot.Steps[i]
			es.Status, es.Started, es.Finished, es.DoneBy, es.Note = st.Status, st.Started, st.Finished, st.DoneBy, st.Note
		}
		ex.Steps = append(ex.Steps, es)
	}
	if v.Approval != nil {
		for _, vt := range v.Approval.Votes {
			ex.Votes = append(ex.Votes, ExportVote{Request: v.Approval.ID, Approver: vt.User, Kind: "approve", Time: vt.At})
		}
	}
	return ex, nil
}

// Write writes ex as "json" (one document) or "csv" (one row per audit record, each
// data field as its own data.KEY column, sorted; then one row per vote and per step
// so a spreadsheet holds the whole record).
func Write(w io.Writer, ex Export, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	case "csv":
		return writeCSV(w, ex)
	}
	return fmt.Errorf("--format %q: want json or csv", format)
}

func writeCSV(w io.Writer, ex Export) error {
	keys := map[string]bool{}
	for _, r := range ex.Audit {
		for k := range r.Data {
			keys[k] = true
		}
	}
	dataKeys := slices.Sorted(maps.Keys(keys))
	cw := csv.NewWriter(w)
	head := []string{"record", "seq", "time", "rotation", "site", "actor", "kind", "step", "detail"}
	for _, k := range dataKeys {
		head = append(head, "data."+k)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	pad := func(row []string) []string {
		for len(row) < len(head) {
			row = append(row, "")
		}
		return row
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	for _, r := range ex.Audit {
		row := []string{"audit", fmt.Sprint(r.Seq), ts(r.Time), r.Rotation, ex.Site, r.Actor, r.Kind, r.Step, csvSafe(r.Detail)}
		for _, k := range dataKeys {
			row = append(row, csvSafe(r.Data[k]))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	for _, v := range ex.Votes {
		if err := cw.Write(pad([]string{"vote", "", ts(v.Time), ex.Rotation, ex.Site, v.Approver, "vote-" + v.Kind, "approval", "request " + v.Request})); err != nil {
			return err
		}
	}
	for _, s := range ex.Steps {
		detail := s.Title
		if s.Broadcom != "" {
			detail = "Broadcom step " + s.Broadcom + ": " + s.Title
		}
		row := []string{"step", "", ts(s.Started), ex.Rotation, ex.Site, s.DoneBy, "step-" + s.Status, s.ID, csvSafe(detail)}
		if !s.Finished.IsZero() {
			row[8] += " (finished " + ts(s.Finished) + ")"
		}
		if err := cw.Write(pad(row)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// active reports whether an encoded rotation is running or paused.
func active(raw []byte) bool {
	var r struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return false
	}
	return r.Status == rotation.StatusRunning || r.Status == rotation.StatusPaused
}
