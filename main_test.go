package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sepmbot/sepm/sim"
)

// TestMain lets tests run the real binary's main() in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("SEPMBOT_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDemoAuto is the README's first command: the scripted conversation completes
// with nobody orphaned, for one server and for two.
func TestDemoAuto(t *testing.T) {
	for _, tc := range []struct {
		servers  int
		versions string
		path     string
	}{
		{1, "14.3=80,14.2=10,12.1=10", "single"},
		{2, "14.3=80,14.2=10,12.1=10", "single"}, // 14.2 clients: the single-server path
		{2, "14.3=90,12.1=10", "multi"},
	} {
		t.Run(fmt.Sprintf("servers=%d,%s", tc.servers, tc.path), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			cmd := &DemoCmd{
				SimFlags:     SimFlags{Clients: 500, Servers: tc.servers, Groups: 8, Heartbeat: time.Second, Versions: tc.versions, Offline: 5, Seed: 1, Failover: "loadbalance"},
				SimListen:    "127.0.0.1:0",
				Auto:         true,
				Straggler:    3 * time.Second,
				CardInterval: time.Second,
				Timeout:      2 * time.Minute,
			}
			g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out, In: strings.NewReader("")}
			err := cmd.Run(g)
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := lines[len(lines)-1]
			if err != nil {
				t.Fatalf("demo failed: %v\n%s", err, tailLines(out.String(), 60))
			}
			var res demoResult
			if err := json.Unmarshal([]byte(last), &res); err != nil {
				t.Fatalf("last line is not the JSON result: %q", last)
			}
			if res.Result != "completed" || res.Orphaned != 0 || res.Clients != 500 || res.Path != tc.path {
				t.Fatalf("result %+v", res)
			}
			text := out.String()
			wants := []string{"presents the new certificate"}
			if tc.path == "single" {
				wants = append(wants,
					"bob already approved", // bob tries twice
					"refused: console:alice does not hold the approver role", // alice tries to approve her own
					"carol approved (2 of 2)",
					"[sim] created the HTTP copy",
				)
			}
			for _, want := range wants {
				if !strings.Contains(text, want) {
					t.Errorf("transcript lacks %q", want)
				}
			}
			if t.Failed() {
				t.Log(tailLines(text, 80))
			}
		})
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// child is a running `sepmbot run --chat console` process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan error
}

func startChild(t *testing.T, args []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SEPMBOT_TEST_MAIN=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 4096), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		c.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return c
}

func (c *child) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("writing %q: %v", line, err)
	}
}

// await reads lines until one matches re, and returns the submatches.
func (c *child) await(t *testing.T, re *regexp.Regexp, transcript *[]string) []string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l := <-c.lines:
			*transcript = append(*transcript, l)
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case err := <-c.exited:
			t.Fatalf("child exited (%v) before %s\n%s", err, re, strings.Join(*transcript, "\n"))
		case <-deadline:
			t.Fatalf("no line matching %s in 60s\n%s", re, tailLines(strings.Join(*transcript, "\n"), 60))
		}
	}
}

// TestRunSurvivesKillDuringWait: killing `sepmbot run --chat console` during a wait and
// starting it again on the same --data continues the rotation and refreshes its card.
func TestRunSurvivesKillDuringWait(t *testing.T) {
	site, err := sim.Start(context.Background(), sim.Options{Clients: 200, Servers: 1, Groups: 4, Heartbeat: time.Second, User: "admin", Password: "pw-test-1", Seed: 5, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("pw-test-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := site.Servers()[0]
	args := []string{"run", "--chat", "console", "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-password-file", pwFile,
		"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", srv.Name + "=" + srv.ClientAddr, "--data", filepath.Join(dir, "data"),
		"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*",
		"--poll-interval", "300ms", "--card-interval", "500ms"}
	var transcript []string
	c := startChild(t, args)
	c.say(t, "@alice /sepm rotate site-a --new-cert-sha256 "+srv.NextFingerprint)
	card := c.await(t, regexp.MustCompile(`^\[#(\d+)\] .*R1`), &transcript)[1]
	c.await(t, regexp.MustCompile(`done R1 http-msl`), &transcript)
	if _, err := site.CopyMSLAsHTTP("Default Management Server List", 0); err != nil {
		t.Fatal(err)
	}
	c.say(t, "@alice /sepm done R1 http-msl")
	ref := c.await(t, regexp.MustCompile(`on message (\d+)`), &transcript)[1]
	c.say(t, "@bob react ✅ "+ref)
	c.say(t, "@carol react ✅ "+ref)
	c.await(t, regexp.MustCompile(`▶ wait-disable`), &transcript)
	// Kill it in the middle of the wait.
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	transcript = append(transcript, "---- SIGKILL ----")

	c = startChild(t, args)
	c.await(t, regexp.MustCompile(`^\[#`+card+` edited\]`), &transcript) // the card is refreshed in place
	c.await(t, regexp.MustCompile(`done R1 cert-sepm-01`), &transcript)
	if _, err := site.UpdateCertificate(srv.Name); err != nil {
		t.Fatal(err)
	}
	c.say(t, "@alice /sepm done R1 cert-sepm-01")
	c.await(t, regexp.MustCompile(`R1 completed`), &transcript)
	if f := site.Fleet(); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
}

// TestRefuseTooFewApprovers: the bot will not start when nobody could ever approve.
func TestRefuseTooFewApprovers(t *testing.T) {
	f := BotFlags{Operators: []string{"console:alice"}, Approvers: []string{"console:bob"}, Approvals: 2}
	if _, err := f.roles(); err == nil || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("err = %v", err)
	}
}

// TestRunStopsOnSIGTERM: `sepmbot run --chat console` whose input is still open (a
// terminal, a pipe) exits cleanly on SIGTERM instead of hanging in the read.
func TestRunStopsOnSIGTERM(t *testing.T) {
	site, err := sim.Start(context.Background(), sim.Options{Clients: 20, Servers: 1, Groups: 2, Heartbeat: time.Second, User: "admin", Password: "pw-term-1", Seed: 7, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("pw-term-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := site.Servers()[0]
	c := startChild(t, []string{"run", "--chat", "console", "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-password-file", pwFile,
		"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", srv.Name + "=" + srv.ClientAddr, "--data", filepath.Join(dir, "data"),
		"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*"})
	var transcript []string
	c.await(t, regexp.MustCompile(`type .*/sepm help`), &transcript)
	c.say(t, "@alice /sepm list")
	c.await(t, regexp.MustCompile(`no rotation yet`), &transcript)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second): // failure guard
		t.Fatalf("still running 30s after SIGTERM with its input open\n%s", strings.Join(transcript, "\n"))
	}
}
