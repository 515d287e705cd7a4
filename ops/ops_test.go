package ops

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"sepmbot/approvals"
	"sepmbot/rotation"
	"sepmbot/store"
)

// TestBackupWhileWriting: a backup taken while another goroutine commits opens with
// bbolt, passes its check, and holds every record committed before it started.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put := func(i int) {
		err := db.Update(ctx, func(tx *store.Tx) error {
			if err := tx.Put(store.BucketRotations, fmt.Sprintf("R%d", i), []byte(`{"id":"R`+fmt.Sprint(i)+`","status":"running"}`)); err != nil {
				return err
			}
			_, err := tx.AppendAudit(store.AuditRecord{Rotation: fmt.Sprintf("R%d", i), Kind: "rotation-started"})
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
	for i := 1; i <= 50; i++ {
		put(i)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 51; i <= 150; i++ {
			put(i)
		}
	})
	out := filepath.Join(dir, "copy.db")
	if _, err := Backup(ctx, db, out); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	sum, err := Verify(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rotations < 50 || sum.Audit != sum.Rotations || sum.Active != sum.Rotations {
		t.Errorf("summary %+v", sum)
	}
	// Plain bbolt opens it too.
	b, err := bolt.Open(out, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(store.BucketAudit)).Get([]byte(fmt.Sprintf("%020d", 1))) == nil {
			t.Error("first audit record missing from the copy")
		}
		return nil
	})
}

// TestVerifyRefusesDamage: a truncated or garbled copy does not verify.
func TestVerifyRefusesDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "copy.db")
	if _, err := Backup(ctx, db, out); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, _ := os.ReadFile(out)
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, raw[:len(raw)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, bad); err == nil {
		t.Error("a truncated copy verified")
	}
	garbled := bytes.Clone(raw)
	for i := 0; i < 64; i++ {
		garbled[i] ^= 0xff
	}
	if err := os.WriteFile(bad, garbled, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, bad); err == nil {
		t.Error("a garbled copy verified")
	}
}

type fakeReader struct {
	v    rotation.View
	recs []store.AuditRecord
}

func (f fakeReader) Get(context.Context, string) (rotation.View, error) { return f.v, nil }
func (f fakeReader) Audit(context.Context, string) ([]store.AuditRecord, error) {
	return f.recs, nil
}

func sample() fakeReader {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return fakeReader{
		v: rotation.View{
			Rotation: rotation.Rotation{ID: "R7", Site: "site-a", Requester: "slack:U1", Status: rotation.StatusCompleted, Created: t0,
				Plan:  rotation.Plan{Path: "single", Steps: []rotation.PlanStep{{ID: "disable-secure", Title: "Disable secure communication", SeedStep: "5", Action: rotation.ActDisableSecure}}},
				Steps: []rotation.StepState{{Status: rotation.StepDone, Started: t0, Finished: t0.Add(time.Second)}}},
			Approval: &approvals.Request{ID: "n1", Votes: []approvals.Vote{{User: "slack:U2", At: t0}, {User: "slack:U3", At: t0.Add(time.Minute)}}},
		},
		recs: []store.AuditRecord{
			{Seq: 1, Time: t0, Rotation: "R7", Actor: "slack:U2", Kind: "vote-approved", Step: "approval", Data: map[string]string{"request": "n1"}},
			{Seq: 2, Time: t0, Rotation: "R7", Actor: "sepmbot", Kind: "sepm-change", Step: "disable-secure", Detail: "=HYPERLINK(evil)",
				Data: map[string]string{"target": "My Company/Default", "old": "secure_communications=true", "new": "secure_communications=false"}},
		},
	}
}

// TestExportJSONHoldsEverything: votes with approver and time, steps with
// Broadcom's numbers, and every audit record with every data field.
func TestExportJSONHoldsEverything(t *testing.T) {
	ex, err := Collect(context.Background(), sample(), "r7", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, ex, "json"); err != nil {
		t.Fatal(err)
	}
	var back Export
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Votes) != 2 || back.Votes[1].Approver != "slack:U3" || back.Votes[1].Time.IsZero() {
		t.Errorf("votes %+v", back.Votes)
	}
	if len(back.Steps) != 1 || back.Steps[0].Broadcom != "5" || back.Steps[0].Status != "done" {
		t.Errorf("steps %+v", back.Steps)
	}
	if d := back.Audit[1].Data; d["old"] != "secure_communications=true" || d["new"] != "secure_communications=false" || d["target"] == "" {
		t.Errorf("the change's values are missing: %+v", back.Audit[1])
	}
}

// TestExportCSV: one column per data key, a row per record, vote and step, and no
// cell a spreadsheet would run as a formula.
func TestExportCSV(t *testing.T) {
	ex, _ := Collect(context.Background(), sample(), "R7", time.Now())
	var buf bytes.Buffer
	if err := Write(&buf, ex, "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Join(rows[0], ",")
	if head != "record,seq,time,rotation,site,actor,kind,step,detail,data.new,data.old,data.request,data.target" {
		t.Errorf("header %s", head)
	}
	if len(rows) != 1+2+2+1 {
		t.Errorf("%d rows", len(rows))
	}
	change := rows[2]
	if change[9] != "secure_communications=false" || change[10] != "secure_communications=true" || change[8] != "'=HYPERLINK(evil)" {
		t.Errorf("change row %q", change)
	}
	if err := Write(&buf, ex, "xml"); err == nil {
		t.Error("xml accepted")
	}
}
