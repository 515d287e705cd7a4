package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sepmbot/sepm/sim"
)

const checkPassword = "pw-Check-7781"

func checkSim(t *testing.T) *sim.Site {
	t.Helper()
	site, err := sim.Start(context.Background(), sim.Options{Clients: 20, Servers: 1, Groups: 2, Heartbeat: time.Second, User: "admin", Password: checkPassword, Seed: 11, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { site.Close() })
	return site
}

// goodCheck is a configuration that passes against site.
func goodCheck(t *testing.T, site *sim.Site, password string) *ConfigCheckCmd {
	t.Helper()
	dir := t.TempDir()
	pw := writeSecretFile(t, dir, "pw", password+"\n")
	srv := site.Servers()[0]
	return &ConfigCheckCmd{
		SEPMFlags: SEPMFlags{SEPMURL: site.URL(), SEPMUser: "admin", SEPMPasswordFile: pw, SEPMFingerprint: []string{site.APIFingerprint()},
			SEPMServer: []string{srv.Name + "=" + srv.ClientAddr}},
		BotFlags: BotFlags{SiteName: "site-a", Operators: []string{"console:alice"}, Approvers: []string{"console:bob,console:carol"}, Viewers: []string{"*"},
			Approvals: 2, ApprovalTTL: time.Hour, PollInterval: time.Second, CardInterval: time.Second},
		Chat: []string{"console"}, Data: filepath.Join(dir, "data"), Timeout: 30 * time.Second,
	}
}

func runCheck(t *testing.T, c *ConfigCheckCmd) (string, error) {
	t.Helper()
	var out, logBuf bytes.Buffer
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Out: &out}
	err := c.Run(g)
	all := out.String() + logBuf.String()
	if err != nil {
		all += err.Error()
	}
	for _, secret := range []string{checkPassword, "wrong-Pass-123"} {
		if strings.Contains(all, secret) {
			t.Errorf("the output holds a password:\n%s", all)
		}
	}
	return out.String(), err
}

// TestConfigCheckOK: against the simulator, a good configuration reports OK.
func TestConfigCheckOK(t *testing.T) {
	site := checkSim(t)
	out, err := runCheck(t, goodCheck(t, site, checkPassword))
	if err != nil || !strings.Contains(out, "config check: OK") || strings.Contains(out, "PROBLEM") {
		t.Fatalf("err %v\n%s", err, out)
	}
	for _, want := range []string{"logged in", "may read groups", "no replication partner", "presents", "data folder"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q line:\n%s", want, out)
		}
	}
}

// TestConfigCheckProblems: each broken setting is named precisely, one line each,
// and the check exits non-zero.
func TestConfigCheckProblems(t *testing.T) {
	site := checkSim(t)
	for _, tc := range []struct {
		name   string
		break_ func(c *ConfigCheckCmd)
		want   []string
	}{
		{"wrong password", func(c *ConfigCheckCmd) {
			*c = *goodCheck(t, site, "wrong-Pass-123")
		}, []string{`PROBLEM: site site-a: SEPM refused the credentials of user "admin" (HTTP 401): check the password`}},
		{"untrusted certificate", func(c *ConfigCheckCmd) {
			c.SEPMFingerprint = nil
		}, []string{"PROBLEM: site site-a: the SEPM API certificate at " + strings.TrimPrefix(site.URL(), "https://") + " is not trusted", "--sepm-fingerprint " + site.APIFingerprint()}},
		{"empty approvers", func(c *ConfigCheckCmd) {
			c.Approvers = nil
		}, []string{"PROBLEM: no approvers configured (--approvers / SEPMBOT_APPROVERS)"}},
		{"requester among too few approvers", func(c *ConfigCheckCmd) {
			c.Approvers = []string{"console:alice", "console:bob"}
		}, []string{"PROBLEM: when console:alice requests a rotation, only 1 other approver(s) remain but --approvals is 2"}},
		{"unwritable data folder", func(c *ConfigCheckCmd) {
			file := filepath.Join(t.TempDir(), "plain-file")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			c.Data = filepath.Join(file, "data") // a file where a folder must be: even root cannot write there
		}, []string{"PROBLEM: data folder " + "", "cannot be created: not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goodCheck(t, site, checkPassword)
			tc.break_(c)
			out, err := runCheck(t, c)
			if err == nil {
				t.Fatalf("exit 0:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in:\n%s", want, out)
				}
			}
			if n := strings.Count(out, "PROBLEM:"); n != 1 {
				t.Errorf("%d problem lines, want 1:\n%s", n, out)
			}
		})
	}
}

// TestConfigCheckReadOnlyFolder: a folder without write permission is reported (as
// a non-root user; root writes anyway).
func TestConfigCheckReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into a read-only folder; the not-a-directory case covers the check")
	}
	site := checkSim(t)
	c := goodCheck(t, site, checkPassword)
	if err := os.MkdirAll(c.Data, 0o500); err != nil {
		t.Fatal(err)
	}
	out, err := runCheck(t, c)
	if err == nil || !strings.Contains(out, "is not writable: permission denied") {
		t.Fatalf("%v\n%s", err, out)
	}
}
