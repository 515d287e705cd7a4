package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cutProxy forwards loopback TCP to target; cut drops every connection and stops
// listening, restore listens again on the same address.
type cutProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	p := &cutProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("re-listening on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

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
	px := newCutProxy(t, strings.TrimPrefix(site.URL(), "https://"))
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(checkPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := freeLoopbackAddr(t)
	c := startChild(t, []string{"run", "--chat", "console", "--sepm-url", "https://" + px.addr, "--sepm-user", "admin", "--sepm-password-file", pw,
		"--sepm-fingerprint", site.APIFingerprint(), "--data", filepath.Join(dir, "data"),
		"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--poll-interval", "1s", "--admin-listen", admin})
	var transcript []string
	c.await(t, regexp.MustCompile(`type .*/sepm help`), &transcript)
	url := "http://" + admin
	awaitReadyz(t, url, 200, "sepm site-a: ok")
	px.cut()
	body := awaitReadyz(t, url, 503, "sepm site-a: unreachable")
	if !strings.Contains(body, "store: ok") || strings.Contains(body, checkPassword) {
		t.Errorf("readyz while cut:\n%s", body)
	}
	px.restore(t)
	awaitReadyz(t, url, 200, "sepm site-a: ok")
	if code, _, err := httpGet(url + "/healthz"); err != nil || code != 200 {
		t.Errorf("healthz: %d %v", code, err)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
}
