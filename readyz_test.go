package main

import (
	"path/filepath"
	"regexp"
	"sepmbot/internal/testkit"
	"strings"
	"syscall"
	"testing"
	"time"
)

// awaitReadyz polls /readyz until its status is code (a failure guard bounds it).
func awaitReadyz(t *testing.T, url string, code int, want string) string {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(45 * time.Second)
	var body string
	for {
		select {
		case <-deadline:
			t.Fatalf("/readyz never %d with %q; last:\n%s", code, want, body)
		case <-tick.C:
		}
		c, b, err := httpGet(url + "/readyz")
		body = b
		if err == nil && c == code && strings.Contains(b, want) {
			return b
		}
	}
}

// TestRunReadyzFollowsSEPM: the running bot's /readyz fails while its SEPM is
// unreachable and recovers after, with no rotation polling SEPM.
func TestRunReadyzFollowsSEPM(t *testing.T) {
	t.Parallel() // waits in real time on short heartbeats: overlap it with the others
	site := checkSim(t)
	px := testkit.NewProxy(t, strings.TrimPrefix(site.URL(), "https://"))
	dir := t.TempDir()
	pw := writeSecretFile(t, dir, "pw", checkPassword)
	admin := freeLoopbackAddr(t)
	c := startChild(t, []string{"run", "--chat", "console", "--sepm-url", "https://" + px.Addr, "--sepm-user", "admin", "--sepm-password-file", pw,
		"--sepm-fingerprint", site.APIFingerprint(), "--data", filepath.Join(dir, "data"),
		"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--poll-interval", "1s", "--admin-listen", admin})
	var transcript []string
	c.await(t, regexp.MustCompile(`type .*/sepm help`), &transcript)
	url := "http://" + admin
	awaitReadyz(t, url, 200, "sepm site-a: ok")
	px.Cut()
	body := awaitReadyz(t, url, 503, "sepm site-a: unreachable")
	if !strings.Contains(body, "store: ok") || strings.Contains(body, checkPassword) {
		t.Errorf("readyz while cut:\n%s", body)
	}
	px.Restore(t)
	awaitReadyz(t, url, 200, "sepm site-a: ok")
	if code, _, err := httpGet(url + "/healthz"); err != nil || code != 200 {
		t.Errorf("healthz: %d %v", code, err)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
}
