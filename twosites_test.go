package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunTwoSites: `sepmbot run --config` with two sites starts one engine per site
// over one data file, and /readyz reports each site's SEPM.
func TestRunTwoSites(t *testing.T) {
	a, b := checkSim(t), checkSim(t)
	dir := t.TempDir()
	pw := writeSecretFile(t, dir, "pw-a", checkPassword)
	admin := freeLoopbackAddr(t)
	yml := fmt.Sprintf(`
data: %s
admin-listen: %s
poll-interval: 1s
operators: [console:alice]
approvers: [console:bob, console:carol]
viewers: ["*"]
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
`, filepath.Join(dir, "data"), admin, a.URL(), pw, a.APIFingerprint(), b.URL(), b.APIFingerprint())
	path := writeSecretFile(t, dir, "sepmbot.yaml", yml)
	t.Setenv("SEPMBOT_SEPM_PASSWORD_SITE_B", checkPassword)
	var transcript []string
	c := startChild(t, []string{"--config", path, "run", "--chat", "console"})
	c.await(t, regexp.MustCompile(`on the console for site-a, site-b, as console:`), &transcript)
	url := "http://" + admin
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second) // failure guard
	var body string
	for ready := false; !ready; {
		select {
		case <-deadline:
			t.Fatalf("/readyz never 200 with both sites:\n%s", body)
		case <-tick.C:
		}
		code, b, err := httpGet(url + "/readyz")
		body = b
		ready = err == nil && code == 200
	}
	if !strings.Contains(body, "sepm site-a: ok") || !strings.Contains(body, "sepm site-b: ok") {
		t.Errorf("readyz:\n%s", body)
	}
	c.say(t, "/sepm list")
	c.await(t, regexp.MustCompile(`no rotation yet`), &transcript)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second): // failure guard
		t.Fatal("still running after SIGTERM")
	}
}
