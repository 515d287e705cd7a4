package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sepmbot/internal/testkit"
	"strconv"
	"strings"
	"testing"
	"time"

	"sepmbot/admin"
	"sepmbot/config"
	"sepmbot/logs"
	"sepmbot/store"
)

func demoCmd(servers int, versions string) *DemoCmd {
	return &DemoCmd{
		SimFlags:  SimFlags{Clients: 500, Servers: servers, Groups: 8, Heartbeat: time.Second, Versions: versions, Offline: 5, Seed: 1, Failover: "loadbalance"},
		SimListen: "127.0.0.1:0", Auto: true, Straggler: 3 * time.Second, CardInterval: time.Second, Timeout: 2 * time.Minute,
	}
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

var (
	reStep    = regexp.MustCompile(`(?m)^sepmbot_rotation_step_duration_seconds\{rotation="R1",site="site-a",status="[a-z]+",step="([^"]+)"\}`)
	reNewCert = regexp.MustCompile(`(?m)^sepmbot_rotation_clients_on_new_certificate\{rotation="R1",site="site-a",step="[^"]+"\} (\d+)`)
	reCurrent = regexp.MustCompile(`(?m)^sepmbot_rotation_current_step\{action="[^"]+",rotation="R1",site="site-a",status="[^"]+",step="([^"]+)"\} 1`)
)

// TestDemoMetricsDuringRotation: /metrics scraped during `demo --auto --admin-listen`
// shows the rotation, its steps, and the clients on the new certificate changing;
// /readyz answers 200 while the simulated SEPM is up.
func TestDemoMetricsDuringRotation(t *testing.T) {
	t.Parallel() // waits in real time on short heartbeats: overlap it with the others
	cmd := demoCmd(1, "14.3=80,14.2=10,12.1=10")
	cmd.AdminListen = "127.0.0.1:0"
	out := &testkit.SyncBuffer{}
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: out, In: strings.NewReader("")}
	done := make(chan error, 1)
	go func() { done <- cmd.Run(g) }()

	reAdmin := regexp.MustCompile(`admin +(http://127\.0\.0\.1:\d+)/metrics`)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var base string
	steps, current, newCert := map[string]bool{}, map[string]bool{}, map[int]bool{}
	ready := false
	var last string
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, tailLines(out.String(), 40))
			}
			finished = true
			continue
		case <-tick.C:
		}
		if base == "" {
			if m := reAdmin.FindStringSubmatch(out.String()); m != nil {
				base = m[1]
			}
			continue
		}
		code, body, err := httpGet(base + "/metrics")
		if err != nil || code != 200 {
			continue // the listener stops with the demo
		}
		last = body
		for _, m := range reStep.FindAllStringSubmatch(body, -1) {
			steps[m[1]] = true
		}
		for _, m := range reCurrent.FindAllStringSubmatch(body, -1) {
			current[m[1]] = true
		}
		for _, m := range reNewCert.FindAllStringSubmatch(body, -1) {
			n, _ := strconv.Atoi(m[1])
			newCert[n] = true
		}
		if code, _, err := httpGet(base + "/readyz"); err == nil && code == 200 {
			ready = true
		}
	}
	if base == "" {
		t.Fatalf("no admin URL in the demo's output:\n%s", tailLines(out.String(), 40))
	}
	t.Logf("steps seen %d, current steps %d, clients-on-new-certificate values %v", len(steps), len(current), newCert)
	for _, want := range []string{"approval", "disable-secure", "wait-disable", "cert-sepm-01", "wait-cert"} {
		if !steps[want] {
			t.Errorf("step %s never in /metrics (saw %v)\nlast scrape:\n%s", want, steps, grepLines(last, "sepmbot_rotation"))
		}
	}
	if len(current) < 3 {
		t.Errorf("the current step moved through %v only", current)
	}
	if len(newCert) < 2 {
		t.Errorf("clients on the new certificate never changed: %v", newCert)
	}
	if !ready {
		t.Error("/readyz never answered 200 during the demo")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// fakeSecrets are chat secrets configured as fakes (their platforms do not run).
var fakeSecrets = map[string]string{
	"SLACK_BOT_TOKEN":      "xoxb-1111-2222-FAKEbotTOKEN",
	"SLACK_APP_TOKEN":      "xapp-1-A111-FAKEappTOKEN",
	"SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyFAKE",
	"DISCORD_BOT_TOKEN":    "MTk4NjIyNDgzNDcxOTI1MjQ4.FAKE.discordTOKEN",
}

// TestNoSecretInDebugLog: a full demo run at debug level, with the chat secrets
// configured as fakes, writes none of them, nor the SEPM password, nor a SEPM
// bearer token (the simulator's are 32 hex digits), to any log line.
func TestNoSecretInDebugLog(t *testing.T) {
	for k, v := range fakeSecrets {
		t.Setenv(k, v)
	}
	if _, err := config.LoadSecretEnvs(); err != nil {
		t.Fatal(err)
	}
	var logBuf testkit.SyncBuffer
	steps := &logs.Steps{}
	log, err := logs.New(&logBuf, logs.Options{Format: "json", Level: slog.LevelDebug, Redact: config.Secrets, Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	// An adapter that logged its configuration carelessly is still redacted.
	log.Debug("slack adapter settings", "bot", fakeSecrets["SLACK_BOT_TOKEN"], "sig", fakeSecrets["SLACK_SIGNING_SECRET"])
	out := &testkit.SyncBuffer{}
	g := &Globals{Ctx: context.Background(), Log: log, Out: out, In: strings.NewReader(""), Steps: steps, LogLevel: slog.LevelDebug, LogLevelSet: true}
	demo := demoCmd(2, "14.3=90,12.1=10")
	demo.Data = t.TempDir()
	if err := demo.Run(g); err != nil {
		t.Fatalf("demo: %v", err)
	}
	// Approval request nonces are 32 hex digits too, and not secret.
	nonces := map[string]bool{}
	db, err := store.OpenReadOnly(filepath.Join(demo.Data, "sepmbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(context.Background(), func(tx *store.Tx) error {
		return tx.ForEach(store.BucketApprovals, func(k string, _ []byte) error { nonces[k] = true; return nil })
	})
	db.Close()
	text := logBuf.String()
	lines := strings.Count(text, "\n")
	if lines < 100 || !strings.Contains(text, `"level":"DEBUG"`) {
		t.Fatalf("only %d log lines, or none at debug: the test would prove nothing", lines)
	}
	secrets := []string{demoPassword}
	for _, v := range fakeSecrets {
		secrets = append(secrets, v)
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("secret %q in the log", s[:6]+"…")
		}
	}
	if strings.Contains(strings.ToLower(text), "bearer ") {
		t.Error("a bearer header in the log")
	}
	for _, run := range regexp.MustCompile(`[0-9a-f]+`).FindAllString(text, -1) {
		if len(run) == 32 && !nonces[run] {
			t.Errorf("a 32-hex-digit value (a SEPM token?) in the log: %s…", run[:6])
		}
	}
	// The rotation's lines carry its id and step.
	// Every line of rotation work carries the rotation and its step (the closing
	// line comes after the last step).
	var noStep []string
	withStep := 0
	for _, l := range strings.Split(text, "\n") {
		if !strings.Contains(l, `"rotation":"R1"`) {
			continue
		}
		if strings.Contains(l, `"step":"`) {
			withStep++
		} else if !strings.Contains(l, "R1 completed") {
			noStep = append(noStep, l)
		}
	}
	if withStep < 10 || len(noStep) > 0 {
		t.Errorf("%d rotation lines with their step; without:\n%s", withStep, strings.Join(noStep, "\n"))
	}
	t.Logf("%d log lines checked for %d secrets", lines, len(secrets))
}

// TestHealthcheckCommand: exit 0 on a healthy listener, non-zero when /readyz fails
// (with --ready) or nothing listens.
func TestHealthcheckCommand(t *testing.T) {
	srv := httptest.NewServer((&admin.Server{Chats: []admin.Chat{downChat{}}}).Handler())
	defer srv.Close()
	var out bytes.Buffer
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out}
	if err := (&HealthcheckCmd{AdminURLFlag: AdminURLFlag{AdminURL: srv.URL}}).Run(g); err != nil || !strings.Contains(out.String(), "ok") {
		t.Errorf("healthz: %v %q", err, out.String())
	}
	err := (&HealthcheckCmd{AdminURLFlag: AdminURLFlag{AdminURL: srv.URL}, Ready: true}).Run(g)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "chat slack: not connected") {
		t.Errorf("readyz: %v", err)
	}
	if err := (&HealthcheckCmd{AdminURLFlag: AdminURLFlag{AdminURL: "http://" + freeLoopbackAddr(t)}}).Run(g); err == nil {
		t.Error("nothing listening, yet healthy")
	}
}

type downChat struct{}

func (downChat) Name() string    { return "slack" }
func (downChat) Connected() bool { return false }

// TestBackupRefusesItsOwnDataFile: --out naming the data file (directly or through a
// link) is refused and the file is untouched.
func TestBackupRefusesItsOwnDataFile(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dataFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(dataFile(dir), link); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(dataFile(dir))
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &bytes.Buffer{}}
	for _, out := range []string{dataFile(dir), link, filepath.Join(dir, ".", "sepmbot.db")} {
		if err := (&BackupCmd{Data: dir, Out: out}).Run(g); err == nil || !strings.Contains(err.Error(), "is the data file itself") {
			t.Errorf("--out %s: %v", out, err)
		}
	}
	after, _ := os.Stat(dataFile(dir))
	if !os.SameFile(before, after) {
		t.Error("the data file was replaced")
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	if err := (&BackupCmd{Data: dir, Out: out}).Run(g); err != nil {
		t.Errorf("a good backup: %v", err)
	}
}

// TestAdminTokenGuardsBackupThroughTheBot: with SEPMBOT_ADMIN_TOKEN set, the running
// bot's /backup answers only requests that carry it, and `sepmbot backup` reads the
// same variable and sends it; without it the copy is refused, and the refusal names
// no token. Not parallel: it sets the environment.
func TestAdminTokenGuardsBackupThroughTheBot(t *testing.T) {
	const token = "admin-token-for-the-test-5f0c"
	t.Setenv(admin.TokenEnv, token)
	dir := t.TempDir()
	db, err := store.Open(dataFile(dir)) // the running bot holds the file
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := secretEnv(admin.TokenEnv) // what startSites reads
	if err != nil || got != token {
		t.Fatalf("the bot's token: %q %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _, err := admin.Listen(ctx, "127.0.0.1:0", (&admin.Server{Store: db, Token: got}).Handler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	g := &Globals{Ctx: ctx, Log: slog.New(slog.DiscardHandler), Out: &out}
	backup := func() error {
		return (&BackupCmd{Data: dir, Out: filepath.Join(t.TempDir(), "copy.db"), AdminURLFlag: AdminURLFlag{AdminURL: "http://" + addr}}).Run(g)
	}
	if err := backup(); err != nil || !strings.Contains(out.String(), "from the running bot") {
		t.Fatalf("backup with the token: %v %s", err, out.String())
	}
	t.Setenv(admin.TokenEnv, "")
	err = backup()
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), admin.TokenEnv) || strings.Contains(err.Error(), token) {
		t.Fatalf("backup without the token: %v", err)
	}
}
