package bot

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
)

var updateGolden = flag.Bool("update", false, "rewrite the bot/testdata/*.golden files")

// cardT0 is when the test rotations start.
var cardT0 = time.Date(2025, 3, 4, 14, 0, 0, 0, time.UTC)

func cardTargets(n, insecure int) []rotation.Target {
	var ts []rotation.Target
	for i := range n + insecure {
		ts = append(ts, rotation.Target{
			GroupID:          fmt.Sprintf("G%02d", i),
			LocationID:       "L1",
			Path:             fmt.Sprintf(`My Company\Site A\Group %02d`, i),
			Location:         "Default",
			MSL:              "Default Management Server List",
			Secure:           i < n,
			HeartbeatSeconds: 300,
			Mode:             "push",
		})
	}
	return ts
}

func cardPlan(t *testing.T, multi bool, targets []rotation.Target) rotation.Plan {
	t.Helper()
	inv := rotation.Inventory{
		Site:           "site-a",
		ManagerVersion: "14.3.25029.9000",
		ServerCount:    1,
		Servers:        []rotation.ServerRef{{Name: "sepm-01", ClientAddr: "127.0.0.1:8443"}},
		Targets:        targets,
		ClientsTotal:   9600,
		ClientsOnline:  9000,
		ClientVersions: map[string]int{"14.3": 9600},
		ServersSeen:    map[string]int{"sepm-01": 9600},
	}
	if multi {
		inv.ServerCount = 2
		inv.Servers = append(inv.Servers, rotation.ServerRef{Name: "sepm-02", ClientAddr: "127.0.0.1:8444"})
		inv.ServersSeen = map[string]int{"sepm-01": 4800, "sepm-02": 4800}
	}
	p, err := rotation.MakePlan(inv, rotation.PlanOptions{})
	if err != nil {
		t.Fatalf("MakePlan: %v", err)
	}
	return p
}

func cardRotation(p rotation.Plan) rotation.Rotation {
	r := rotation.Rotation{
		ID:        "R1",
		Site:      p.Site,
		Requester: "console:alice",
		Created:   cardT0,
		Updated:   cardT0,
		Plan:      p,
		Status:    rotation.StatusRunning,
		OldCerts:  map[string]string{"sepm-01": strings.Repeat("ab", 32), "sepm-02": strings.Repeat("cd", 32)},
		NewCerts:  map[string]string{},
	}
	for range p.Steps {
		r.Steps = append(r.Steps, rotation.StepState{Status: rotation.StepPending})
	}
	return r
}

// cardNotes are the notes the engine leaves on finished steps.
var cardNotes = map[string]string{
	"http-msl":       "HTTP copies created by console:alice (the assignment step verifies the names)",
	"assign-http":    "12 groups/locations now use the HTTP copies",
	"approval":       "approved by console:bob and console:carol",
	"disable-secure": "secure communication off in 12 groups/locations",
	"wait-disable":   "9,000/9,000 online clients checked in since the change, 600 offline",
	"cert-sepm-01":   "sepm-01 presents the new certificate 0123456789abcdef… on 127.0.0.1:8443",
	"cert-sepm-02":   "sepm-02 presents the new certificate fedcba9876543210… on 127.0.0.1:8444",
	"report":         "23 clients not seen since the change",
}

// doneUpTo marks steps [0, n) done and makes step n the current one.
func doneUpTo(r *rotation.Rotation, n int) {
	for i := range n {
		r.Steps[i] = rotation.StepState{
			Status:   rotation.StepDone,
			Started:  cardT0.Add(time.Duration(i) * time.Minute),
			Finished: cardT0.Add(time.Duration(i)*time.Minute + 30*time.Second),
			Note:     cardNotes[r.Plan.Steps[i].ID],
		}
	}
	r.Cursor = n
}

func activate(r *rotation.Rotation, at time.Time) {
	r.Steps[r.Cursor].Status = rotation.StepActive
	r.Steps[r.Cursor].Started = at
	if s := r.Plan.Steps[r.Cursor]; s.Kind == rotation.KindWait {
		r.Wait = &rotation.WaitState{Step: s.ID, Started: at, Deadline: at.Add(time.Duration(s.WaitSeconds) * time.Second), HeartbeatSeconds: r.Plan.HeartbeatSeconds}
	}
}

func cardApproval(votes ...string) *approvals.Request {
	a := approvals.New("3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6", "R1", "console:alice", strings.Repeat("0", 64), 2, 30*time.Minute, cardT0.Add(2*time.Minute))
	for i, u := range votes {
		a.Votes = append(a.Votes, approvals.Vote{User: u, At: cardT0.Add(time.Duration(3+i) * time.Minute)})
	}
	if len(votes) >= a.Required {
		a.State = approvals.StateApproved
	}
	a.MessageRef = "7"
	return &a
}

func cardReport() *rotation.Report {
	rep := &rotation.Report{ClientsTotal: 9600, NotSeen: 23, Offline: 588}
	for i := range 20 {
		rep.NotSeenNames = append(rep.NotSeenNames, fmt.Sprintf("WKS-%04d", i+1))
	}
	return rep
}

// cardCases builds one view per card state.
func cardCases(t *testing.T) []struct {
	name string
	v    rotation.View
	now  time.Time
} {
	single := cardPlan(t, false, cardTargets(12, 2))
	multi := cardPlan(t, true, cardTargets(12, 2))
	type tc = struct {
		name string
		v    rotation.View
		now  time.Time
	}
	var cases []tc

	// A fresh single-server rotation: every step pending.
	{
		r := cardRotation(single)
		cases = append(cases, tc{"fresh", rotation.View{Rotation: r}, cardT0})
	}
	// The first (manual) step waits for the operator.
	{
		r := cardRotation(single)
		activate(&r, cardT0)
		cases = append(cases, tc{"manual_waiting", rotation.View{Rotation: r}, cardT0.Add(time.Minute)})
	}
	// The approval step with one vote of two.
	{
		r := cardRotation(single)
		doneUpTo(&r, single.StepIndex("approval"))
		activate(&r, cardT0.Add(2*time.Minute))
		a := cardApproval("console:bob")
		r.Approval = a.ID
		cases = append(cases, tc{"approval_pending", rotation.View{Rotation: r, Approval: a}, cardT0.Add(5 * time.Minute)})
	}
	// A heartbeat wait with observed progress.
	{
		r := cardRotation(single)
		doneUpTo(&r, single.StepIndex("wait-disable"))
		activate(&r, cardT0.Add(6*time.Minute))
		a := cardApproval("console:bob", "console:carol")
		r.Approval = a.ID
		p := &rotation.Progress{
			Step: "wait-disable", HeartbeatsDone: 2, HeartbeatsNeeded: 3,
			OnNewPolicy: 8412, Online: 9000, Offline: 588, Left: 4*time.Minute + 20*time.Second,
			Laggards: []string{"WKS-0001", "WKS-0002"}, Observed: cardT0.Add(17 * time.Minute),
		}
		cases = append(cases, tc{"wait_progress", rotation.View{Rotation: r, Progress: p, Approval: a}, cardT0.Add(17 * time.Minute)})
	}
	// The multi-server path in its straggler window.
	{
		r := cardRotation(multi)
		doneUpTo(&r, multi.StepIndex("straggler"))
		activate(&r, cardT0.Add(time.Hour))
		p := &rotation.Progress{Step: "straggler", DeadlineOnly: true, Left: 89*24*time.Hour + 23*time.Hour + 10*time.Minute}
		cases = append(cases, tc{"straggler_window", rotation.View{Rotation: r, Progress: p}, cardT0.Add(time.Hour + 50*time.Minute)})
	}
	// Paused after a failed step.
	{
		r := cardRotation(single)
		doneUpTo(&r, single.StepIndex("enable-secure"))
		activate(&r, cardT0.Add(40*time.Minute))
		r.Status = rotation.StatusPaused
		r.LastError = `enable-secure: patching My Company\Site A\Group 03 / Default: sepm: PATCH groups/G03/locations/L1/settings: 500: internal error`
		cases = append(cases, tc{"paused_error", rotation.View{Rotation: r}, cardT0.Add(41 * time.Minute)})
	}
	// Completed with its report.
	{
		r := cardRotation(single)
		doneUpTo(&r, len(single.Steps))
		r.Status = rotation.StatusCompleted
		r.Report = cardReport()
		cases = append(cases, tc{"completed", rotation.View{Rotation: r}, cardT0.Add(2 * time.Hour)})
	}
	// Aborted during the first wait: the rest skipped, the revert steps run.
	{
		r := cardRotation(single)
		cur := single.StepIndex("wait-disable")
		doneUpTo(&r, cur)
		r.Steps[cur] = rotation.StepState{Status: rotation.StepSkipped, Started: cardT0.Add(6 * time.Minute), Finished: cardT0.Add(8 * time.Minute)}
		hb := single.WaitSeconds
		revert := []rotation.PlanStep{
			{ID: "revert-wait-1", Title: "Wait for clients to take the current policy before secure communication returns", Kind: rotation.KindWait, SeedStep: "abort", Action: rotation.ActWait, WaitSeconds: hb},
			{ID: "revert-enable-secure", Title: "Re-enable secure communication", Kind: rotation.KindAuto, SeedStep: "abort", Action: rotation.ActEnableSecure},
			{ID: "revert-wait-2", Title: "Wait at least three heartbeats", Kind: rotation.KindWait, SeedStep: "abort", Action: rotation.ActWait, WaitSeconds: hb},
			{ID: "revert-restore-msl", Title: "Re-assign the original management server lists", Kind: rotation.KindAuto, SeedStep: "abort", Action: rotation.ActRestoreMSL},
			{ID: "revert-wait-3", Title: "Wait for clients to take the original lists", Kind: rotation.KindWait, SeedStep: "abort", Action: rotation.ActWait, WaitSeconds: hb},
			{ID: "revert-report", Title: "Report where the site stands", Kind: rotation.KindAuto, SeedStep: "abort", Action: rotation.ActReport},
		}
		r.Plan.Steps = append(r.Plan.Steps[:cur+1:cur+1], revert...)
		r.Steps = r.Steps[:cur+1]
		for i := range revert {
			r.Steps = append(r.Steps, rotation.StepState{Status: rotation.StepDone, Note: fmt.Sprintf("revert %d of %d done", i+1, len(revert))})
		}
		r.Cursor = len(r.Steps)
		r.Status = rotation.StatusAborted
		r.Aborting, r.AbortBy, r.AbortReason = true, "console:carol", "change window closed"
		r.Report = cardReport()
		cases = append(cases, tc{"aborted", rotation.View{Rotation: r}, cardT0.Add(3 * time.Hour)})
	}
	// Every kind of wait: after the certificate update, after re-enabling, after the
	// lists are restored, per server on the multi-server path, during a revert, and a
	// wait not yet polled. A 24h --min-wait shows the time figure apart from coverage.
	{
		r := cardRotation(single)
		doneUpTo(&r, single.StepIndex("wait-cert"))
		activate(&r, cardT0.Add(20*time.Minute))
		r.Wait.Deadline = r.Wait.Started.Add(24 * time.Hour)
		p := &rotation.Progress{Step: "wait-cert", OnNewPolicy: 8412, Online: 9000, Offline: 588, Left: 22*time.Hour + 48*time.Minute}
		cases = append(cases, tc{"wait_certificate_24h", rotation.View{Rotation: r, Progress: p}, cardT0.Add(20*time.Minute + time.Hour + 12*time.Minute)})
	}
	{
		r := cardRotation(single)
		doneUpTo(&r, single.StepIndex("wait-enable"))
		activate(&r, cardT0.Add(40*time.Minute))
		p := &rotation.Progress{Step: "wait-enable", OnNewPolicy: 9000, Online: 9000, Left: 5 * time.Minute}
		cases = append(cases, tc{"wait_enable", rotation.View{Rotation: r, Progress: p}, cardT0.Add(50 * time.Minute)})
	}
	{
		r := cardRotation(single)
		doneUpTo(&r, single.StepIndex("wait-restore"))
		activate(&r, cardT0.Add(60*time.Minute))
		p := &rotation.Progress{Step: "wait-restore", OnNewPolicy: 8999, Online: 9000, Left: 0, Laggards: []string{"WKS-0042"}}
		cases = append(cases, tc{"wait_restore_lagging", rotation.View{Rotation: r, Progress: p}, cardT0.Add(76 * time.Minute)})
	}
	{
		r := cardRotation(multi)
		doneUpTo(&r, multi.StepIndex("wait-sepm-01"))
		activate(&r, cardT0.Add(10*time.Minute))
		cases = append(cases, tc{"wait_server_not_polled", rotation.View{Rotation: r}, cardT0.Add(10*time.Minute + 40*time.Second)})
	}
	{
		r := cardRotation(single)
		cur := single.StepIndex("wait-disable")
		doneUpTo(&r, cur)
		r.Steps[cur] = rotation.StepState{Status: rotation.StepSkipped}
		r.Plan.Steps = append(r.Plan.Steps[:cur+1:cur+1], rotation.PlanStep{ID: "revert-wait-1", Title: "Wait for clients to take the current policy before secure communication returns", Kind: rotation.KindWait, SeedStep: "abort", Action: rotation.ActWait, WaitSeconds: single.WaitSeconds})
		r.Steps = append(r.Steps[:cur+1], rotation.StepState{})
		r.Cursor = cur + 1
		activate(&r, cardT0.Add(9*time.Minute))
		r.Aborting, r.AbortBy, r.AbortReason = true, "console:carol", "change window closed"
		p := &rotation.Progress{Step: "revert-wait-1", OnNewPolicy: 4000, Online: 9000, Left: 10 * time.Minute}
		cases = append(cases, tc{"wait_revert", rotation.View{Rotation: r, Progress: p}, cardT0.Add(14*time.Minute + 30*time.Second)})
	}
	return cases
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run with -update to create it): %v", err)
	}
	if got+"\n" != string(want) {
		t.Errorf("%s differs from %s (run go test -run Card ./bot/ -update to accept):\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

// TestRenderCardGolden pins the console text of the run card in every state.
func TestRenderCardGolden(t *testing.T) {
	for _, c := range cardCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got := RenderText(RenderCard(c.v, c.now))
			checkGolden(t, "card_"+c.name, got)
			if again := RenderText(RenderCard(c.v, c.now)); again != got {
				t.Errorf("rendering is not deterministic:\n%s\n---\n%s", got, again)
			}
			if m := RenderCard(c.v, c.now); len(m.Buttons) != 0 {
				t.Errorf("the run card has buttons: %+v", m.Buttons)
			}
		})
	}
}

// TestRenderCardContents checks what each state must say, independent of layout.
func TestRenderCardContents(t *testing.T) {
	want := map[string][]string{
		"fresh":                  {"*R1 · site-a · single-server path* · running · requested by alice", "Why: the site has one management server.", "○ *1. Create the HTTP copy", "○ 12. Report clients not seen"},
		"manual_waiting":         {"▶ *1. Create the HTTP copy", "waiting for the operator: `done R1 http-msl`"},
		"approval_pending":       {"✅ 1. ", "✅ 2. ", "▶ *3. Two-person approval", "approval: 1 of 2 · bob ✅ · waiting for 1 more · expires 14:32 UTC"},
		"wait_progress":          {"▶ *5. Wait at least three heartbeats", "wait 1 of 4 · ⏳ 11m of 15m elapsed (73%) · 8,412/9,000 clients checked in (93%)", "offline: 588 clients", "approval: 2 of 2 · bob ✅ · carol ✅ · approved", "until at least 14:21:00 UTC"},
		"wait_certificate_24h":   {"wait 2 of 4 · ⏳ 1h12m of 24h elapsed (5%) · 8,412/9,000 clients checked in (93%)", "until at least 2025-03-05 14:20 UTC"},
		"wait_enable":            {"wait 3 of 4 · ⏳ 10m of 15m elapsed (66%) · 9,000/9,000 clients checked in (100%)"},
		"wait_restore_lagging":   {"wait 4 of 4 · ⏳ 15m of 15m elapsed (100%) · 8,999/9,000 clients checked in (99%)", "lagging: WKS-0042"},
		"wait_server_not_polled": {"wait 1 of 2 · ⏳ 40s of 15m elapsed (4%)"},
		"wait_revert":            {"⏳ 6m of 15m elapsed (36%) · 4,000/9,000 clients checked in (44%)", "⏹ aborting (by carol: change window closed)"},
		"straggler_window":       {"*R1 · site-a · multi-server path* · running", "▶ *3. Keep sepm-02 on the old certificate", "straggler window · ⏳ 50m of 90d elapsed (0%)"},
		"paused_error":           {"· paused ·", "⚠ *8. Re-enable secure communication*", "⚠ paused: enable-secure: patching", "`resume R1`"},
		"completed":              {"· completed ·", "🏁 completed · 9,600 clients · 23 not seen since the change · 588 offline", "not seen: WKS-0001, WKS-0002", "WKS-0020 and 3 more"},
		"aborted":                {"· aborted ·", "⏭ 5. Wait at least three heartbeats in all groups · `wait-disable` · skipped", "✅ 6. Wait for clients to take the current policy", "✅ 11. Report where the site stands", "🏁 aborted by carol: change window closed; reverted"},
	}
	for _, c := range cardCases(t) {
		text := RenderText(RenderCard(c.v, c.now))
		for _, w := range want[c.name] {
			if !strings.Contains(text, w) {
				t.Errorf("%s: card lacks %q:\n%s", c.name, w, text)
			}
		}
		for _, no := range []string{"seed", "on the new policy", "1 steps"} {
			if strings.Contains(text, no) {
				t.Errorf("%s: card says %q:\n%s", c.name, no, text)
			}
		}
		// Exactly one bold step line while the rotation is active, none after.
		bold := 0
		for _, s := range RenderCard(c.v, c.now).Steps {
			if s.Current {
				bold++
			}
		}
		wantBold := 1
		if !c.v.Rotation.Active() {
			wantBold = 0
		}
		if bold != wantBold {
			t.Errorf("%s: %d current steps, want %d:\n%s", c.name, bold, wantBold, text)
		}
	}
}

// TestRenderCardStepStates: every step state has its own mark.
func TestRenderCardStepStates(t *testing.T) {
	seen := map[StepState]bool{}
	for _, c := range cardCases(t) {
		for _, s := range RenderCard(c.v, c.now).Steps {
			seen[s.State] = true
		}
	}
	marks := map[string]bool{}
	for _, st := range []StepState{StepPending, StepActive, StepDone, StepSkipped, StepFailed} {
		if !seen[st] {
			t.Errorf("no golden card shows a %s step", st)
		}
		marks[Mark(st)] = true
	}
	if len(marks) != 5 {
		t.Errorf("step states share marks: %v", marks)
	}
}

// TestRenderCardManualStates covers the manual step's other states: said done
// (verifying) and a new certificate seen that awaits confirmation.
func TestRenderCardManualStates(t *testing.T) {
	p := cardPlan(t, false, cardTargets(3, 0))
	r := cardRotation(p)
	i := p.StepIndex("cert-sepm-01")
	doneUpTo(&r, i)
	activate(&r, cardT0.Add(20*time.Minute))

	r.Steps[i].DoneBy = "console:alice"
	if text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0)); !strings.Contains(text, "alice said done; verifying") {
		t.Errorf("verifying state not shown:\n%s", text)
	}
	r.Steps[i].DoneBy = ""
	r.SeenCerts = map[string]string{"sepm-01": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0)); !strings.Contains(text, "confirm certificate 0123456789abcdef…: `confirm R1 cert-sepm-01`") {
		t.Errorf("confirmation state not shown:\n%s", text)
	}
	// Past its deadline a wait names the online clients that lag.
	w := cardRotation(p)
	doneUpTo(&w, p.StepIndex("wait-disable"))
	activate(&w, cardT0)
	lag := &rotation.Progress{Step: "wait-disable", HeartbeatsDone: 3, HeartbeatsNeeded: 3, OnNewPolicy: 97, Online: 100, Laggards: []string{"WKS-0001", "WKS-0002"}}
	if text := RenderText(RenderCard(rotation.View{Rotation: w, Progress: lag}, cardT0)); !strings.Contains(text, "lagging: WKS-0001, WKS-0002 and 1 more") {
		t.Errorf("laggards not shown after the deadline:\n%s", text)
	}
	lag.Left = time.Minute
	if text := RenderText(RenderCard(rotation.View{Rotation: w, Progress: lag}, cardT0)); strings.Contains(text, "lagging") {
		t.Errorf("laggards shown before the deadline:\n%s", text)
	}

	// A progress that belongs to an earlier step is not shown.
	pr := &rotation.Progress{Step: "wait-disable", HeartbeatsDone: 3, HeartbeatsNeeded: 3, OnNewPolicy: 10, Online: 10}
	if text := RenderText(RenderCard(rotation.View{Rotation: r, Progress: pr}, cardT0)); strings.Contains(text, "clients checked in (") {
		t.Errorf("stale progress shown:\n%s", text)
	}
}

// TestRenderApprovalRequest checks the approval message: what is done where, who
// asks, how many approvals, expiry, requester excluded, and the buttons.
func TestRenderApprovalRequest(t *testing.T) {
	p := cardPlan(t, false, cardTargets(18, 2))
	r := cardRotation(p)
	doneUpTo(&r, p.StepIndex("approval"))
	activate(&r, cardT0.Add(2*time.Minute))
	a := cardApproval()
	m := RenderApprovalRequest(rotation.View{Rotation: r, Approval: a})
	text := RenderText(m)
	checkGolden(t, "approval_request", text)
	for _, w := range []string{
		"alice asks to turn *secure communication off* in 18 groups/locations:",
		`  • My Company\Site A\Group 00 / Default`,
		`  • My Company\Site A\Group 13 / Default`,
		"  • …and 4 more",
		"stays off for at least 30m plus the certificate update",
		"Needs 2 approvals",
		"the requester cannot approve",
		"Expires at 14:32 UTC.",
		"React ✅ to approve or ❌ to deny",
		"[Approve] [Deny]",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("approval request lacks %q:\n%s", w, text)
		}
	}
	for _, no := range []string{`Group 14 / Default`, `Group 18 /`, `Group 19 /`} {
		if strings.Contains(text, no) {
			t.Errorf("approval request lists %q (beyond the limit, or a group whose secure communication is already off):\n%s", no, text)
		}
	}
	if len(m.Buttons) != 2 || m.Buttons[0].ActionID != "approve" || m.Buttons[0].Value != a.ID || m.Buttons[1].ActionID != "deny" || m.Buttons[0].Disabled {
		t.Errorf("buttons = %+v", m.Buttons)
	}
	if c := m.Buttons[0].Confirm; !strings.Contains(c, "18 groups/locations of site-a for at least 30m") {
		t.Errorf("approve confirmation %q does not say what is approved", c)
	}

	// Few targets: all listed, no "more".
	small := cardRotation(cardPlan(t, false, cardTargets(2, 0)))
	text = RenderText(RenderApprovalRequest(rotation.View{Rotation: small, Approval: a}))
	if !strings.Contains(text, "in 2 groups/locations") || strings.Contains(text, "more") {
		t.Errorf("small approval request:\n%s", text)
	}
}

func TestDurationAndThousands(t *testing.T) {
	durs := map[time.Duration]string{
		-time.Second:                    "0s",
		0:                               "0s",
		500 * time.Millisecond:          "1s",
		12 * time.Second:                "12s",
		59 * time.Second:                "59s",
		59*time.Second + 600e6:          "1m",
		4 * time.Minute:                 "4m",
		time.Minute + 55*time.Second:    "2m",
		4*time.Minute + 29*time.Second:  "4m",
		59*time.Minute + 31*time.Second: "1h",
		time.Hour + 5*time.Minute:       "1h05m",
		time.Hour + 12*time.Minute:      "1h12m",
		23*time.Hour + 59*time.Minute:   "23h59m",
		24 * time.Hour:                  "24h",
		47*time.Hour + 59*time.Minute:   "47h59m",
		48 * time.Hour:                  "2d",
		89*24*time.Hour + 23*time.Hour:  "89d 23h",
		90 * 24 * time.Hour:             "90d",
	}
	for d, want := range durs {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
	nums := map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 9000: "9,000", 1234567: "1,234,567", -1234: "-1,234"}
	for n, want := range nums {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	now := cardT0
	if got := Deadline(now.Add(59*time.Minute+5*time.Second), now); got != "14:59:05 UTC" {
		t.Errorf("deadline under an hour: %q", got)
	}
	if got := Deadline(now.Add(25*time.Hour), now); got != "2025-03-05 15:00 UTC" {
		t.Errorf("deadline a day away: %q", got)
	}
}

func TestProgressLine(t *testing.T) {
	p := Progress{Label: "wait 2 of 4", Elapsed: time.Hour + 12*time.Minute, Total: 24 * time.Hour, Done: 8412, Of: 9000, Unit: "clients checked in"}
	if got, want := p.Line(), "wait 2 of 4 · ⏳ 1h12m of 24h elapsed (5%) · 8,412/9,000 clients checked in (93%)"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	// Past the deadline the time figure stops at 100%; coverage never claims 100% early.
	p = Progress{Label: "wait 1 of 4", Elapsed: 2 * time.Hour, Total: time.Hour, Done: 999, Of: 1000, Unit: "clients checked in"}
	if got, want := p.Line(), "wait 1 of 4 · ⏳ 1h of 1h elapsed (100%) · 999/1,000 clients checked in (99%)"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}

func TestRenderText(t *testing.T) {
	if got := RenderText(Message{Text: "hello"}); got != "hello" {
		t.Errorf("plain: %q", got)
	}
	m := Message{Text: "vote", Buttons: []Button{{ActionID: "approve", Label: "Approve"}, {ActionID: "deny", Label: "Deny", Disabled: true}}}
	if got := RenderText(m); got != "vote\n[Approve]" {
		t.Errorf("buttons: %q", got)
	}
	long := Message{Context: []string{strings.Repeat("x", 1000)}}
	if got := RenderText(long); len([]rune(got)) != ConsoleLimits.Line || !strings.HasSuffix(got, "…") {
		t.Errorf("a long line is not clipped to %d runes: %d", ConsoleLimits.Line, len([]rune(got)))
	}
}

// TestCardCompletedWithSuspectedOrphans: a completion with suspected orphans never
// reads as a success on the card, and shows the four counts.
func TestCardCompletedWithSuspectedOrphans(t *testing.T) {
	r := cardRotation(cardPlan(t, false, cardTargets(3, 0)))
	doneUpTo(&r, len(r.Steps))
	r.Status = rotation.StatusCompleted
	r.Report = &rotation.Report{ClientsTotal: 10, OnNew: 6, SuspectedOrphaned: 2, SuspectedOrphanedNames: []string{"WKS-1", "WKS-2"}, OfflineBefore: 1, NeverSeen: 1, NotSeen: 4}
	text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0))
	if strings.Contains(text, "🏁 completed") || !strings.Contains(text, "NOT cleanly: 2 clients suspected orphaned") {
		t.Errorf("card reads as a success:\n%s", text)
	}
	if !strings.Contains(text, "6 on the new certificate · 2 suspected orphaned · 1 offline since before the change · 1 never seen") || !strings.Contains(text, "suspected orphaned: WKS-1, WKS-2") {
		t.Errorf("card lacks the report's counts:\n%s", text)
	}
}

// TestCardShowsExposure: while the rotation runs, the card says how long clients
// have been on the HTTP lists and secure communication off; once it is over, not.
func TestCardShowsExposure(t *testing.T) {
	r := cardRotation(cardPlan(t, false, cardTargets(2, 0)))
	r.HTTPSince = cardT0.Add(-90 * time.Minute).UnixMilli()
	r.SecureOffSince = cardT0.Add(-40 * time.Minute).UnixMilli()
	text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0))
	if !strings.Contains(text, "⏱ exposure: clients on the HTTP lists for 1h30m · secure communication off for 40m") {
		t.Errorf("running card lacks the exposure:\n%s", text)
	}
	r.SecureOffSince = cardT0.Add(-59 * time.Second).UnixMilli()
	if text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0)); !strings.Contains(text, "secure communication off for under a minute") {
		t.Errorf("exposure under a minute:\n%s", text)
	}
	r.SecureOffSince = 0
	if text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0)); strings.Contains(text, "secure communication off for") {
		t.Errorf("secure communication is back on, the card still says it is off:\n%s", text)
	}
	r.Status = rotation.StatusCompleted
	if text := RenderText(RenderCard(rotation.View{Rotation: r}, cardT0)); strings.Contains(text, "exposure") {
		t.Errorf("a finished rotation shows an exposure:\n%s", text)
	}
}
