package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"sepmbot/config"
)

// TestConfigFileSitesCheck: a config file with two sites (one password from a file,
// one from its site variable) sets the flags below the environment and the command
// line, and `config check` checks each site, naming the broken one.
func TestConfigFileSitesCheck(t *testing.T) {
	a, b := checkSim(t), checkSim(t)
	dir := t.TempDir()
	pw := writeSecretFile(t, dir, "pw-a", checkPassword)
	yml := fmt.Sprintf(`
data: %s
approvals: 3
operators: [console:alice]
approvers: [console:bob, console:carol, console:dave]
sites:
  - name: site-a
    sepm-url: %s
    sepm-user: admin
    sepm-password-file: %s
    sepm-fingerprint: [%s]
    replication-partners: [site-b]
  - name: site-b
    sepm-url: %s
    sepm-user: admin
    sepm-fingerprint: [%s]
`, filepath.Join(dir, "data"), a.URL(), pw, a.APIFingerprint(), b.URL(), b.APIFingerprint())
	path := writeSecretFile(t, dir, "sepmbot.yaml", yml)
	file, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) *CLI {
		t.Helper()
		var cli CLI
		k, err := kong.New(&cli, append(configOptions(file), kong.Name("sepmbot"), kong.Exit(func(int) { t.Fatal("exit") }))...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &cli
	}
	cli := parse("config", "check")
	if c := cli.Config.Check; c.Approvals != 3 || len(c.Approvers) != 3 || c.Data != filepath.Join(dir, "data") {
		t.Fatalf("file not applied: %+v", c.BotFlags)
	}
	t.Setenv("SEPMBOT_APPROVALS", "2")
	if cli := parse("config", "check"); cli.Config.Check.Approvals != 2 {
		t.Errorf("env below the file: %d", cli.Config.Check.Approvals)
	}
	if cli := parse("config", "check", "--approvals", "1"); cli.Config.Check.Approvals != 1 {
		t.Errorf("flag below env: %d", cli.Config.Check.Approvals)
	}

	t.Setenv("SEPMBOT_SEPM_PASSWORD_SITE_B", "wrong-Pass-123")
	var out bytes.Buffer
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out, File: file}
	c := cli.Config.Check
	c.Timeout = 30e9
	err = c.Run(g)
	text := out.String()
	if err == nil || !strings.Contains(text, "ok:      site site-a: SEPM at") || !strings.Contains(text, `PROBLEM: site site-b: SEPM refused the credentials of user "admin" (HTTP 401): check the password (from SEPMBOT_SEPM_PASSWORD_SITE_B)`) {
		t.Fatalf("err %v\n%s", err, text)
	}
	if strings.Count(text, "PROBLEM") != 1 || strings.Contains(text, "wrong-Pass-123") || strings.Contains(text, checkPassword) {
		t.Errorf("output:\n%s", text)
	}
	// A secret in the file is refused before anything runs.
	if _, err := config.Parse("x.yaml", []byte("sites:\n  - name: a\n    sepm-password: "+checkPassword+"\n")); err == nil || strings.Contains(err.Error(), checkPassword) {
		t.Errorf("secret in the file: %v", err)
	}
}
