package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runMain runs the real main() in a child with args and returns its combined output
// (stdout and stderr, one pipe) with each line's arrival time.
func runMainTimed(t *testing.T, timeout time.Duration, args ...string) ([]string, []time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SEPMBOT_TEST_MAIN=1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var lines []string
	var at []time.Duration
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		at = append(at, time.Since(start))
	}
	return lines, at, cmd.Wait()
}

// TestNoArgumentsOverview: `sepmbot` alone prints a short overview and succeeds
// (not the whole run help and an error).
func TestNoArgumentsOverview(t *testing.T) {
	lines, _, err := runMainTimed(t, time.Minute)
	out := strings.Join(lines, "\n")
	if err != nil {
		t.Fatalf("sepmbot with no arguments failed: %v\n%s", err, out)
	}
	for _, w := range []string{"sepmbot demo", "sepmbot run --data DIR", "sepmbot version", "docs/procedure.md"} {
		if !strings.Contains(out, w) {
			t.Errorf("overview lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "Usage:") || strings.Contains(out, "--sepm-url") || len(lines) > 20 {
		t.Errorf("overview is the run help, or too long (%d lines):\n%s", len(lines), out)
	}
}

// TestVersionCommand: `sepmbot version` names the module version and says where the
// revision comes from (the test binary has no VCS stamp).
func TestVersionCommand(t *testing.T) {
	lines, _, err := runMainTimed(t, time.Minute, "version")
	if err != nil || len(lines) != 1 || !strings.HasPrefix(lines[0], "sepmbot ") || !strings.Contains(lines[0], "revision") {
		t.Errorf("version: %v %q", err, lines)
	}
	revision = "0123abc"
	defer func() { revision = "" }()
	if got := versionLine(); !strings.Contains(got, "(revision 0123abc") {
		t.Errorf("an -ldflags revision is not shown: %q", got)
	}
}

// TestDemoOutputReadable is acceptance 5: `sepmbot demo --auto`, stdout and stderr
// together, has no log line at info level, at most 200 lines per minute of wait,
// and no chat text that names our own documents.
func TestDemoOutputReadable(t *testing.T) {
	t.Parallel() // waits in real time on short heartbeats: overlap it with the others
	if testing.Short() {
		t.Skip("runs the demo for about a minute")
	}
	lines, at, err := runMainTimed(t, 4*time.Minute, "demo", "--auto", "--servers", "1", "--heartbeat", "3s", "--card-interval", "2s")
	out := strings.Join(lines, "\n")
	if err != nil {
		t.Fatalf("demo --auto failed: %v\n%s", err, tailLines(out, 60))
	}
	var waitTime time.Duration
	waitLines := 0
	var from time.Duration = -1
	for i, l := range lines {
		if strings.Contains(l, "level=INFO") || strings.Contains(l, "level=DEBUG") {
			t.Errorf("log line at info level in the demo: %q", l)
		}
		for _, bad := range []string{"seed steps", "(seed after 9)", "(seed "} {
			if strings.Contains(l, bad) {
				t.Errorf("the chat names our own documents (%q): %q", bad, l)
			}
		}
		switch {
		case strings.Contains(l, "] ▶ wait-"):
			from = at[i]
		case from >= 0 && strings.Contains(l, "] ✅ wait-"):
			waitTime += at[i] - from
			from = -1
		}
		if from >= 0 {
			waitLines++
		}
	}
	if waitTime < 20*time.Second {
		t.Fatalf("only %s of waiting seen; the transcript:\n%s", waitTime, tailLines(out, 80))
	}
	perMinute := float64(waitLines) / waitTime.Minutes()
	t.Logf("%d lines in %s of waits: %.0f lines per minute of wait; %d lines in all", waitLines, waitTime.Round(time.Second), perMinute, len(lines))
	if perMinute > 200 {
		t.Errorf("%.0f lines per minute of wait, want at most 200", perMinute)
	}
}

// TestDemoHelpListsConsoleActions: in the demo, /sepm help says how to react, click
// and drive the simulated SEPM console.
func TestDemoHelpListsConsoleActions(t *testing.T) {
	var out bytes.Buffer
	cmd := &DemoCmd{
		SimFlags:  SimFlags{Clients: 50, Servers: 1, Groups: 2, Heartbeat: time.Second, Versions: "14.3=100", Seed: 1, Failover: "loadbalance"},
		SimListen: "127.0.0.1:0", Straggler: time.Second, CardInterval: time.Second, Timeout: time.Minute,
	}
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out, In: strings.NewReader("@alice /sepm help\n@bob react 👍 1\n")}
	if err := cmd.Run(g); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, w := range []string{"react ✅ 8", "click approve 8", "!sim help", "a 👍 or any other emoji does not vote"} {
		if !strings.Contains(text, w) {
			t.Errorf("demo help lacks %q:\n%s", w, text)
		}
	}
}
