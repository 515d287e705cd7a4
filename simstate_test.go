package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"sepmbot/sepm"
	"sepmbot/sepm/sim"
)

// simBanner is what a `sepmbot sim` child printed: how to reach it.
type simBanner struct {
	url, fp, server, clientAddr, next string
}

var (
	bannerFlags  = regexp.MustCompile(`--sepm-url (\S+) --sepm-fingerprint ([0-9a-f]{64})`)
	bannerServer = regexp.MustCompile(`--sepm-server (\S+)=(\S+)`)
	bannerNext   = regexp.MustCompile(`^\s+next\s+([0-9a-f]{64})`)
	bannerState  = regexp.MustCompile(`^state:\s+\S+ \((.*)\)`)
)

// awaitBanner reads a sim child's banner up to its next fingerprint and returns it
// with how the state file was used.
func awaitBanner(t *testing.T, c *child, transcript *[]string) (simBanner, string) {
	t.Helper()
	var b simBanner
	state := c.await(t, bannerState, transcript)[1]
	m := c.await(t, bannerFlags, transcript)
	b.url, b.fp = m[1], m[2]
	m = c.await(t, bannerServer, transcript)
	b.server, b.clientAddr = m[1], m[2]
	b.next = c.await(t, bannerNext, transcript)[1]
	return b, state
}

// TestRotationSurvivesSimRestart (issue 13, acceptance 3): `sepmbot sim --state F`
// is killed in the middle of the rotation's certificate wait and started again on
// the same file; the site continues where it was (settings, the new certificate,
// every client's cache) and the rotation completes with nobody orphaned.
func TestRotationSurvivesSimRestart(t *testing.T) {
	t.Parallel() // waits in real time on short heartbeats: overlap it with the others
	dir := t.TempDir()
	pwFile := writeSecretFile(t, dir, "pw", "pw-test-2\n")
	simArgs := []string{"sim", "--state", filepath.Join(dir, "site.db"), "--listen", freeLoopbackAddr(t), "--password-file", pwFile,
		"--clients", "200", "--groups", "4", "--heartbeat", "1s", "--seed", "7"}
	var simLog, botLog []string
	s := startChild(t, simArgs)
	b, state := awaitBanner(t, s, &simLog)
	if state != "new site" {
		t.Fatalf("first start: state %q", state)
	}
	admin, err := sepm.New(sepm.Config{URL: b.url, Username: "admin", Password: "pw-test-2", Fingerprints: []string{b.fp, b.next}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The console is one person: alice, bob and carol each speak in a session of their
	// own on the same data folder.
	as := func(user string) []string {
		return []string{"run", "--chat", "console", "--console-user", user, "--sepm-url", b.url, "--sepm-user", "admin", "--sepm-password-file", pwFile,
			"--sepm-fingerprint", b.fp, "--sepm-server", b.server + "=" + b.clientAddr, "--data", filepath.Join(dir, "data"),
			"--operators", "console:alice", "--approvers", "console:bob,console:carol", "--viewers", "*",
			"--poll-interval", "300ms", "--card-interval", "500ms", "--admin-listen", ""}
	}
	c := startChild(t, as("alice"))
	c.say(t, "/sepm rotate site-a --new-cert-sha256 "+b.next)
	c.await(t, regexp.MustCompile(`done R1 http-msl`), &botLog)
	if err := admin.Do(ctx, "POST", sim.AdminAPI+"/msls/copy", map[string]any{"source": "Default Management Server List"}, nil); err != nil {
		t.Fatal(err)
	}
	c.say(t, "/sepm done R1 http-msl")
	c.await(t, regexp.MustCompile(`approval requested`), &botLog)
	c.stop(t, syscall.SIGTERM, &botLog)
	c = approveInTurn(t, as, "R1", &botLog, "bob", "carol")
	c.await(t, regexp.MustCompile(`done R1 cert-`+b.server), &botLog)
	c.stop(t, syscall.SIGTERM, &botLog)
	if err := admin.Do(ctx, "POST", sim.AdminAPI+"/servers/"+b.server+"/certificate", nil, nil); err != nil {
		t.Fatal(err)
	}
	c = startChild(t, as("alice"))
	c.await(t, regexp.MustCompile(`as console:alice`), &botLog)
	c.say(t, "/sepm done R1 cert-"+b.server)
	c.await(t, regexp.MustCompile(`▶ wait-cert`), &botLog)

	// SEPM goes down in the middle of the certificate wait, and comes back.
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	simLog = append(simLog, "---- SIGKILL ----")
	s = startChild(t, simArgs)
	b2, state := awaitBanner(t, s, &simLog)
	if state != "continued where it was" || b2.fp != b.next || b2.clientAddr != b.clientAddr || b2.url != b.url {
		t.Fatalf("after the restart: state %q, banner %+v (before %+v)", state, b2, b)
	}

	c.await(t, regexp.MustCompile(`R1 completed`), &botLog)
	var f sim.FleetReport
	if err := admin.Do(ctx, "GET", sim.AdminAPI+"/fleet", nil, &f); err != nil {
		t.Fatal(err)
	}
	if f.Orphaned != 0 {
		t.Errorf("%d orphaned after the restart: %+v", f.Orphaned, f.OrphanedClients)
	}
	for _, p := range f.Patches {
		for name, fp := range p.Fields {
			if fp.Changed > 2 { // off, then on again (or HTTP copy, then back)
				t.Errorf("%s / %s: %s changed %d times", p.Group, p.Location, name, fp.Changed)
			}
		}
	}
	if t.Failed() {
		t.Logf("bot:\n%s\nsim:\n%s", tailLines(strings.Join(botLog, "\n"), 60), tailLines(strings.Join(simLog, "\n"), 20))
	}
}

// TestSimStartsSteadyUnlessFresh: `sepmbot sim` serves a site that starts steady,
// `--fresh` one that starts as if just switched on, and the demo's site starts
// fresh.
func TestSimStartsSteadyUnlessFresh(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		steady bool
	}{{[]string{"sim"}, true}, {[]string{"sim", "--fresh"}, false}} {
		var cli CLI
		k, err := kong.New(&cli, kong.Name("sepmbot"), kong.Exit(func(int) { t.Fatal("exit") }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := cli.Sim.siteOptions("pw").Steady; got != tc.steady {
			t.Errorf("%v: Steady = %v, want %v", tc.args, got, tc.steady)
		}
	}
	var demo DemoCmd
	if demo.options("127.0.0.1:0", "admin", "pw").Steady {
		t.Error("the demo's site starts steady")
	}
}
