package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sepmbot/ops"
	"sepmbot/sepm/sim"
	"sepmbot/store"
)

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSIGTERMDuringWaitThenRestart: a backup and an audit export taken during a
// rotation go through the running bot's admin listener and hold the rotation and
// its audit; SIGTERM during the wait exits cleanly; the restarted bot continues the
// rotation to the end; the export then works on the stopped bot's file.
func TestSIGTERMDuringWaitThenRestart(t *testing.T) {
	t.Parallel() // waits in real time on short heartbeats: overlap it with the others
	site, err := sim.Start(context.Background(), sim.Options{Clients: 200, Servers: 1, Groups: 4, Heartbeat: 2 * time.Second, User: "admin", Password: "pw-term-2", Seed: 9, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dir := t.TempDir()
	pwFile := writeSecretFile(t, dir, "pw", "pw-term-2\n")
	data := filepath.Join(dir, "data")
	admin := freeLoopbackAddr(t)
	srv := site.Servers()[0]
	// The console is one person: each of alice, bob and carol speaks in a session of
	// their own on the same data folder.
	as := func(user string) []string {
		return []string{"run", "--chat", "console", "--console-user", user, "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-password-file", pwFile,
			"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", srv.Name + "=" + srv.ClientAddr, "--data", data,
			"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*",
			"--poll-interval", "300ms", "--card-interval", "500ms", "--admin-listen", admin}
	}
	var transcript []string
	c := startChild(t, as("alice"))
	c.say(t, "/sepm rotate site-a --new-cert-sha256 "+srv.NextFingerprint)
	card := c.await(t, regexp.MustCompile(`^\[#(\d+)\] .*R1`), &transcript)[1]
	c.await(t, regexp.MustCompile(`done R1 http-msl`), &transcript)
	if _, err := site.CopyMSLAsHTTP("Default Management Server List", 0); err != nil {
		t.Fatal(err)
	}
	c.say(t, "/sepm done R1 http-msl")
	c.await(t, regexp.MustCompile(`approval requested`), &transcript)
	c.stop(t, syscall.SIGTERM, &transcript)
	c = approveInTurn(t, as, "R1", &transcript, "bob", "carol")
	c.await(t, regexp.MustCompile(`▶ wait-disable`), &transcript)

	// A backup while the bot holds the file: through the admin listener.
	ctx := context.Background()
	var out bytes.Buffer
	g := &Globals{Ctx: ctx, Log: slog.New(slog.DiscardHandler), Out: &out}
	copyPath := filepath.Join(dir, "backup.db")
	bc := &BackupCmd{Data: data, Out: copyPath, AdminURLFlag: AdminURLFlag{AdminURL: "http://" + admin}}
	if err := bc.Run(g); err != nil {
		t.Fatalf("backup during the rotation: %v", err)
	}
	if !strings.Contains(out.String(), "from the running bot") || !strings.Contains(out.String(), "1 rotations (1 active)") {
		t.Errorf("backup said: %s", out.String())
	}
	cp, err := store.OpenReadOnly(copyPath)
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	recs, err := cp.Audit(ctx, "R1")
	var raw []byte
	_ = cp.View(ctx, func(tx *store.Tx) error { raw = tx.Get(store.BucketRotations, "R1"); return nil })
	cp.Close()
	if err != nil || len(raw) == 0 || !hasKind(recs, "rotation-started") || !hasKind(recs, "vote-approved") {
		t.Errorf("the copy lacks R1 or its audit (err %v, %d records)", err, len(recs))
	}
	// The audit export, also through the running bot.
	out.Reset()
	if err := (&AuditExportCmd{ID: "r1", Data: data, Format: "json", AdminURLFlag: AdminURLFlag{AdminURL: "http://" + admin}}).Run(g); err != nil {
		t.Fatalf("audit export during the rotation: %v", err)
	}
	var ex ops.Export
	if err := json.Unmarshal(out.Bytes(), &ex); err != nil || ex.Rotation != "R1" || len(ex.Votes) != 2 {
		t.Errorf("export: %v %+v", err, ex.Votes)
	}

	// SIGTERM in the middle of the wait: a clean exit.
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second): // failure guard
		t.Fatal("still running 30s after SIGTERM")
	}
	transcript = append(transcript, "---- SIGTERM ----")

	c = startChild(t, as("alice"))
	c.await(t, regexp.MustCompile(`^\[#`+card+` edited\]`), &transcript)
	c.await(t, regexp.MustCompile(`done R1 cert-sepm-01`), &transcript)
	if _, err := site.UpdateCertificate(srv.Name); err != nil {
		t.Fatal(err)
	}
	c.say(t, "/sepm done R1 cert-sepm-01")
	c.await(t, regexp.MustCompile(`R1 completed`), &transcript)
	if f := site.Fleet(); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited

	// Stopped: the export reads the file itself.
	out.Reset()
	if err := (&AuditExportCmd{ID: "R1", Data: data, Format: "csv", AdminURLFlag: AdminURLFlag{AdminURL: "http://127.0.0.1:1"}}).Run(g); err != nil {
		t.Fatalf("audit export of a stopped bot: %v", err)
	}
	csv := out.String()
	for _, want := range []string{"rotation-completed", "vote-approved", "console:bob", "console:carol", "sepm-change", "step-done"} {
		if !strings.Contains(csv, want) {
			t.Errorf("export lacks %s:\n%s", want, csv)
		}
	}
}

func hasKind(recs []store.AuditRecord, kind string) bool {
	for _, r := range recs {
		if r.Kind == kind {
			return true
		}
	}
	return false
}
