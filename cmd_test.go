package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"sepmbot/sepm/sim"
)

// runMain runs the real main() in a child process and returns its output.
func runMain(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "SEPMBOT_TEST_MAIN=1"), env...)
	out, err := cmd.Output()
	return string(out), err
}

// TestPlanJSON: `sepmbot plan --json` prints the plan with the fields the issue names.
func TestPlanJSON(t *testing.T) {
	t.Parallel()
	site, err := sim.Start(context.Background(), sim.Options{Clients: 300, Servers: 2, Groups: 6, Versions: "14.3=90,12.1=10", Heartbeat: 2 * time.Second, User: "admin", Password: "pw-plan-1", Seed: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	args := []string{"plan", "--json", "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-fingerprint", site.APIFingerprint()}
	for _, s := range site.Servers() {
		args = append(args, "--sepm-server", s.Name+"="+s.ClientAddr)
	}
	out, err := runMain(t, []string{"SEPMBOT_SEPM_PASSWORD=pw-plan-1"}, args...)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	var p struct {
		Path           string   `json:"path"`
		Reason         string   `json:"reason"`
		ManagerVersion string   `json:"manager_version"`
		Servers        []string `json:"servers"`
		GroupsToChange []struct {
			GroupID    string `json:"group_id"`
			LocationID string `json:"location_id"`
			FullPath   string `json:"full_path"`
		} `json:"groups_to_change"`
		ClientsTotal     int `json:"clients_total"`
		Clients142       int `json:"clients_14_2"`
		HeartbeatSeconds int `json:"heartbeat_seconds"`
		WaitSeconds      int `json:"wait_seconds"`
		Steps            []struct {
			ID, Title, Kind string
			SeedStep        string `json:"seed_step"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if p.Path != "multi" || p.Reason == "" || p.ManagerVersion == "" || len(p.Servers) != 2 || p.ClientsTotal != 300 || p.Clients142 != 0 {
		t.Errorf("plan %+v", p)
	}
	if p.HeartbeatSeconds != 2 || p.WaitSeconds != 6 {
		t.Errorf("heartbeat %d wait %d, want 2 and 6", p.HeartbeatSeconds, p.WaitSeconds)
	}
	if len(p.GroupsToChange) == 0 || p.GroupsToChange[0].GroupID == "" || p.GroupsToChange[0].LocationID == "" || p.GroupsToChange[0].FullPath == "" {
		t.Errorf("groups_to_change %+v", p.GroupsToChange)
	}
	kinds := map[string]bool{}
	for _, s := range p.Steps {
		if s.ID == "" || s.Title == "" || s.SeedStep == "" {
			t.Errorf("step %+v", s)
		}
		kinds[s.Kind] = true
	}
	if !kinds["manual"] || !kinds["wait"] || !kinds["auto"] {
		t.Errorf("step kinds %v", kinds)
	}
	if strings.Contains(out, "pw-plan-1") {
		t.Error("the password reached the output")
	}

	// The human form says the same, and a wrong password is a clear error without it.
	cmd := exec.Command(os.Args[0], append([]string{"plan"}, args[2:]...)...) // the human form
	cmd.Env = append(os.Environ(), "SEPMBOT_TEST_MAIN=1", "SEPMBOT_SEPM_PASSWORD=wrong-secret-9")
	both, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("wrong password accepted:\n%s", both)
	}
	if !strings.Contains(string(both), "401") || strings.Contains(string(both), "wrong-secret-9") {
		t.Errorf("wrong password: want a 401 error without the password, got:\n%s", both)
	}
}

// TestPlanRefusesMultiWith142: --mode multi is refused when 14.2.x clients exist.
func TestPlanRefusesMultiWith142(t *testing.T) {
	t.Parallel()
	site, err := sim.Start(context.Background(), sim.Options{Clients: 100, Servers: 2, Groups: 4, Versions: "14.3=80,14.2=20", User: "admin", Password: "pw-plan-2", Seed: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	args := []string{"plan", "--mode", "multi", "--sepm-url", site.URL(), "--sepm-user", "admin", "--sepm-fingerprint", site.APIFingerprint()}
	for _, s := range site.Servers() {
		args = append(args, "--sepm-server", s.Name+"="+s.ClientAddr)
	}
	out, err := runMain(t, []string{"SEPMBOT_SEPM_PASSWORD=pw-plan-2"}, args...)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	if !strings.Contains(out, "single-server path") || !strings.Contains(out, "14.2.x") || !strings.Contains(out, "refused") {
		t.Errorf("human plan does not refuse multi with 14.2 clients:\n%s", out)
	}
}

// TestSimCommand: `sepmbot sim` prints the flags the bot needs, never the password.
func TestSimCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := writeSecretFile(t, dir, "pw", "sim-secret-7\n")
	c := startChild(t, []string{"sim", "--listen", "127.0.0.1:0", "--clients", "50", "--servers", "2", "--password-file", pw, "--seed", "9"})
	var transcript []string
	c.await(t, regexp.MustCompile(`--sepm-url https://127\.0\.0\.1:\d+ --sepm-fingerprint [0-9a-f]{64}`), &transcript)
	c.await(t, regexp.MustCompile(`--sepm-server sepm-02=127\.0\.0\.1:\d+`), &transcript)
	if strings.Contains(strings.Join(transcript, "\n"), "sim-secret-7") {
		t.Error("sim printed the password")
	}
}

// TestPlanRefusals: `sepmbot plan` stops with a clear message, and exit status 1, when
// the manager's version cannot be read (it used to plan the 12.x path) and when SEPM
// refuses the credentials (not retried, no secret in the message).
func TestPlanRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, version, password string
		want                    []string
	}{
		{"unknown manager version", "SEPM-next", "pw-plan-3", []string{`plan refused: the manager version "SEPM-next" cannot be parsed`}},
		{"refused credentials", "", "Wrong-Pa55word#9", []string{"refused the bot's credentials", "401", "will not retry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			site, err := sim.Start(context.Background(), sim.Options{Clients: 20, Servers: 1, Groups: 2, ManagerVersion: tc.version, User: "admin", Password: "pw-plan-3", Seed: 4, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer site.Close()
			s := site.Servers()[0]
			out, err := runMain(t, []string{"SEPMBOT_SEPM_PASSWORD=" + tc.password}, "plan", "--sepm-url", site.URL(), "--sepm-user", "admin",
				"--sepm-fingerprint", site.APIFingerprint(), "--sepm-server", s.Name+"="+s.ClientAddr)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("plan: err %v, want exit status 1\n%s", err, out)
			}
			msg := string(ee.Stderr)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, tc.password) && tc.password != "pw-plan-3" {
				t.Errorf("stderr carries the password:\n%s", msg)
			}
			if strings.Contains(out, "Steps:") {
				t.Errorf("a plan was printed:\n%s", out)
			}
		})
	}
}
