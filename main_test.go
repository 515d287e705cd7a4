package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sepmbot/sepm/sim"
	"sepmbot/textsafe"
)

// TestMain lets tests run the real binary's main() in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("SEPMBOT_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	// These tests mostly wait in real time (short heartbeats, child processes), not on
	// the CPU: let more of them wait at once than -parallel's default of GOMAXPROCS,
	// unless -parallel was given.
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set("8")
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

// stop ends a child with sig and waits for it to exit.
func (c *child) stop(t *testing.T, sig syscall.Signal, transcript *[]string) {
	t.Helper()
	_ = c.cmd.Process.Signal(sig)
	for {
		select {
		case l := <-c.lines:
			*transcript = append(*transcript, l)
		case <-c.exited:
			*transcript = append(*transcript, "---- "+sig.String()+" ----")
			return
		case <-time.After(30 * time.Second): // failure guard
			t.Fatalf("still running 30s after %s\n%s", sig, strings.Join(*transcript, "\n"))
		}
	}
}

// TestRunSurvivesKillDuringWait: killing `sepmbot run --chat console` during a wait and
// starting it again on the same --data continues the rotation and refreshes its card.
// The console is one person, so the people take turns at the terminal as a shift
// would: alice (operator) starts, bob and carol (approvers) each approve in a session
// of their own (--console-user), the bot is killed during the wait, and alice finishes.
func TestRunSurvivesKillDuringWait(t *testing.T) {
	t.Parallel() // waits in real time on short heartbeats: overlap it with the others
	site, err := sim.Start(context.Background(), sim.Options{Clients: 200, Servers: 1, Groups: 4, Heartbeat: time.Second, User: "admin", Password: "pw-test-1", Seed: 5, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dir := t.TempDir()
	pwFile := writeSecretFile(t, dir, "pw", "pw-test-1\n")
	srv := site.Servers()[0]
	as := func(user string) []string {
		return []string{"run", "--chat", "console", "--console-user", user, "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-password-file", pwFile,
			"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", srv.Name + "=" + srv.ClientAddr, "--data", filepath.Join(dir, "data"),
			"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*",
			"--poll-interval", "300ms", "--card-interval", "500ms"}
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
	c.say(t, "/sepm approve R1") // alice cannot approve her own rotation
	c.await(t, regexp.MustCompile("refused: `approve` needs the approver role, and console:alice does not hold it"), &transcript)
	c.stop(t, syscall.SIGTERM, &transcript)

	c = approveInTurn(t, as, "R1", &transcript, "bob", "carol")
	c.await(t, regexp.MustCompile(`▶ wait-disable`), &transcript)
	c.stop(t, syscall.SIGKILL, &transcript) // killed in the middle of the wait

	c = startChild(t, as("alice"))
	c.await(t, regexp.MustCompile(`^\[#`+card+` edited\]`), &transcript) // the card is refreshed in place
	c.await(t, regexp.MustCompile(`done R1 cert-sepm-01`), &transcript)
	if _, err := site.UpdateCertificate(srv.Name); err != nil {
		t.Fatal(err)
	}
	c.say(t, "/sepm done R1 cert-sepm-01")
	c.await(t, regexp.MustCompile(`R1 completed`), &transcript)
	if f := site.Fleet(); f.Orphaned != 0 {
		t.Errorf("orphaned = %d", f.Orphaned)
	}
}

// TestRunConsoleIsOnePerson (acceptance 7): `sepmbot run --chat console` is one
// person; `@bob ...` is refused with a message and changes nothing, whatever it would
// have done (a vote, a command). Without --console-user the person is the OS user.
func TestRunConsoleIsOnePerson(t *testing.T) {
	site, err := sim.Start(context.Background(), sim.Options{Clients: 20, Servers: 1, Groups: 2, Heartbeat: time.Second, User: "admin", Password: "pw-one-1", Seed: 9, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dir := t.TempDir()
	pwFile := writeSecretFile(t, dir, "pw", "pw-one-1\n")
	srv := site.Servers()[0]
	args := func(extra ...string) []string {
		return append([]string{"run", "--chat", "console", "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-password-file", pwFile,
			"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", srv.Name + "=" + srv.ClientAddr, "--data", filepath.Join(dir, "data"),
			"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*"}, extra...)
	}
	var transcript []string
	c := startChild(t, args("--console-user", "alice"))
	c.await(t, regexp.MustCompile(`as console:alice \(one person`), &transcript)
	for _, line := range []string{"@bob /sepm rotate site-a", "@bob react ✅ 1", "@carol /sepm approve R1"} {
		c.say(t, line)
		c.await(t, regexp.MustCompile(`^\[→alice\] refused: this console is one person, alice .*cannot speak as @(bob|carol).*Only `+"`sepmbot demo`"), &transcript)
	}
	c.say(t, "/sepm list")
	c.await(t, regexp.MustCompile(`^\[(→alice|#\d+)\] no rotation yet`), &transcript) // the refused lines changed nothing
	c.say(t, "/sepm approve R1")
	c.await(t, regexp.MustCompile("refused: `approve` needs the approver role, and console:alice does not hold it"), &transcript)
	c.stop(t, syscall.SIGTERM, &transcript)

	// Default: the OS user.
	osUser := ""
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	if osUser == "" || !textsafe.Safe(osUser) || strings.ContainsAny(osUser, " @") {
		t.Skipf("OS user %q cannot be a console user here", osUser)
	}
	c = startChild(t, args())
	c.await(t, regexp.MustCompile(`as console:`+regexp.QuoteMeta(osUser)+` \(one person`), &transcript)
	c.say(t, "/sepm rotate site-a")
	c.await(t, regexp.MustCompile(`needs the operator role, and console:`+regexp.QuoteMeta(osUser)+` does not hold it`), &transcript)
	c.stop(t, syscall.SIGTERM, &transcript)
}

// TestDemoSpeaksAsSeveralUsers (acceptance 7): the demo alone accepts `@bob ...`, and
// says at start that this terminal speaks as several users.
func TestDemoSpeaksAsSeveralUsers(t *testing.T) {
	var out bytes.Buffer
	cmd := &DemoCmd{
		SimFlags:     SimFlags{Clients: 20, Servers: 1, Groups: 2, Heartbeat: time.Second, Versions: "14.3=100", Seed: 1, Failover: "loadbalance"},
		SimListen:    "127.0.0.1:0",
		Straggler:    3 * time.Second,
		CardInterval: time.Second,
		Timeout:      time.Minute,
	}
	in := strings.NewReader("@bob /sepm list\n@vera /sepm rotate site-a\n")
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out, In: in}
	if err := cmd.Run(g); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"DEMO ONLY: this terminal speaks as several users",
		"] no rotation yet",
		"[→vera] refused: `rotate` needs the operator role, and console:vera does not hold it",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "this console is one person") {
		t.Errorf("the demo refused an @user line:\n%s", text)
	}
}

// TestConsoleUserFlag: --console-user must be a plain name.
func TestConsoleUserFlag(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"alice", true}, {"svc.sepm-ops", true}, {"@alice", false}, {"alice smith", false}, {"al\u202eice", false}, {"al\nice", false},
	} {
		got, err := (&RunCmd{ConsoleUser: tc.in}).consoleUser()
		if (err == nil) != tc.ok || (tc.ok && got != tc.in) {
			t.Errorf("--console-user %q: %q, %v", tc.in, got, err)
		}
	}
}

// TestRefuseTooFewApprovers: the bot will not start when nobody could ever approve.
func TestRefuseTooFewApprovers(t *testing.T) {
	f := BotFlags{Operators: []string{"console:alice"}, Approvers: []string{"console:bob"}, Approvals: 2}
	if _, err := f.roles(); err == nil || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("err = %v", err)
	}
}

// TestRefuseSingleApproverWithoutFlag: --approvals 1 needs --allow-single-approver.
func TestRefuseSingleApproverWithoutFlag(t *testing.T) {
	f := BotFlags{Operators: []string{"console:alice"}, Approvers: []string{"console:bob"}, Approvals: 1}
	if _, err := f.roles(); err == nil || !strings.Contains(err.Error(), "--allow-single-approver") {
		t.Fatalf("err = %v, want a refusal naming --allow-single-approver", err)
	}
	f.AllowSingleApprover = true
	if _, err := f.roles(); err != nil {
		t.Fatalf("with --allow-single-approver: %v", err)
	}
	f.Approvals = 0
	if _, err := f.roles(); err == nil {
		t.Fatal("--approvals 0 accepted")
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
	pwFile := writeSecretFile(t, dir, "pw", "pw-term-1\n")
	srv := site.Servers()[0]
	c := startChild(t, []string{"run", "--chat", "console", "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-password-file", pwFile,
		"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", srv.Name + "=" + srv.ClientAddr, "--data", filepath.Join(dir, "data"),
		"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*"})
	var transcript []string
	c.await(t, regexp.MustCompile(`type .*/sepm help`), &transcript)
	c.say(t, "/sepm list")
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

// approveInTurn approves rotation id as each approver in turn, each in a
// one-person console session of its own (`run --console-user NAME`) on the same
// data folder, and returns the last session, still running.
func approveInTurn(t *testing.T, as func(user string) []string, id string, transcript *[]string, approvers ...string) *child {
	t.Helper()
	var c *child
	for i, approver := range approvers {
		c = startChild(t, as(approver))
		c.await(t, regexp.MustCompile(`as console:`+approver), transcript)
		c.say(t, "/sepm approve "+id)
		c.await(t, regexp.MustCompile(approver+` approved`), transcript)
		if i < len(approvers)-1 {
			c.stop(t, syscall.SIGTERM, transcript)
		}
	}
	return c
}

// writeSecretFile writes a password or token file (mode 0600) named name in dir and
// returns its path.
func writeSecretFile(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
