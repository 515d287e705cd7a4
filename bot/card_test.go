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
	"wait-disable":   "9,000/9,000 online clients on the new policy, 600 offline",
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
		"fresh":            {"*R1* · site-a · single-server path · running · requested by alice", "Why: the site has one management server.", "○ *1. Create the HTTP copy", "○ 12. Report clients not seen"},
		"manual_waiting":   {"▶ *1. Create the HTTP copy", "waiting for the operator: `done R1 http-msl`"},
		"approval_pending": {"✅ 1. ", "✅ 2. ", "▶ *3. Two-person approval", "approval: 1 of 2 · bob ✅ · waiting for 1 more · expires 14:32 UTC"},
		"wait_progress":    {"▶ *5. Wait at least three heartbeats", "heartbeat 2/3 ▓▓▓▓▓▓▓▓░ 8,412/9,000 on new policy (93%) · 4m left", "offline: 588 clients", "approval: 2 of 2 · bob ✅ · carol ✅ · approved"},
		"straggler_window": {"*R1* · site-a · multi-server path · running", "▶ *3. Keep sepm-02 on the old certificate", "straggler window · 89d 23h left"},
		"paused_error":     {"· paused ·", "⚠ paused: enable-secure: patching", "`resume R1`"},
		"completed":        {"· completed ·", "🏁 completed · 9,600 clients · 23 not seen since the change · 588 offline", "not seen: WKS-0001, WKS-0002", "WKS-0020 and 3 more"},
		"aborted":          {"· aborted ·", "⏭ 5. Wait at least three heartbeats in all groups · `wait-disable` · skipped", "✅ 6. Wait for clients to take the current policy", "✅ 11. Report where the site stands", "🏁 aborted by carol: change window closed; reverted"},
	}
	for _, c := range cardCases(t) {
		text := RenderCard(c.v, c.now).Text
		for _, w := range want[c.name] {
			if !strings.Contains(text, w) {
				t.Errorf("%s: card lacks %q:\n%s", c.name, w, text)
			}
		}
		// Exactly one bold step line while the rotation is active, none after.
		bold := 0
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, " *") && (strings.HasPrefix(line, "○") || strings.HasPrefix(line, "▶")) {
				bold++
			}
		}
		wantBold := 1
		if !c.v.Rotation.Active() {
			wantBold = 0
		}
		if bold != wantBold {
			t.Errorf("%s: %d bold step lines, want %d:\n%s", c.name, bold, wantBold, text)
		}
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
	if text := RenderCard(rotation.View{Rotation: r}, cardT0).Text; !strings.Contains(text, "alice said done; verifying") {
		t.Errorf("verifying state not shown:\n%s", text)
	}
	r.Steps[i].DoneBy = ""
	r.SeenCerts = map[string]string{"sepm-01": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if text := RenderCard(rotation.View{Rotation: r}, cardT0).Text; !strings.Contains(text, "confirm certificate 0123456789abcdef…: `confirm R1 cert-sepm-01`") {
		t.Errorf("confirmation state not shown:\n%s", text)
	}
	// Past its deadline a wait names the online clients that lag.
	w := cardRotation(p)
	doneUpTo(&w, p.StepIndex("wait-disable"))
	activate(&w, cardT0)
	lag := &rotation.Progress{Step: "wait-disable", HeartbeatsDone: 3, HeartbeatsNeeded: 3, OnNewPolicy: 97, Online: 100, Laggards: []string{"WKS-0001", "WKS-0002"}}
	if text := RenderCard(rotation.View{Rotation: w, Progress: lag}, cardT0).Text; !strings.Contains(text, "lagging: WKS-0001, WKS-0002 and 1 more") {
		t.Errorf("laggards not shown after the deadline:\n%s", text)
	}
	lag.Left = time.Minute
	if text := RenderCard(rotation.View{Rotation: w, Progress: lag}, cardT0).Text; strings.Contains(text, "lagging") {
		t.Errorf("laggards shown before the deadline:\n%s", text)
	}

	// A progress that belongs to an earlier step is not shown.
	pr := &rotation.Progress{Step: "wait-disable", HeartbeatsDone: 3, HeartbeatsNeeded: 3, OnNewPolicy: 10, Online: 10}
	if text := RenderCard(rotation.View{Rotation: r, Progress: pr}, cardT0).Text; strings.Contains(text, "heartbeat 3/3") {
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
		`  • My Company\Site A\Group 14 / Default`,
		"  and 3 more",
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
	for _, no := range []string{`Group 15 / Default`, `Group 18 /`, `Group 19 /`} {
		if strings.Contains(text, no) {
			t.Errorf("approval request lists %q (beyond 15, or a group whose secure communication is already off):\n%s", no, text)
		}
	}
	wantButtons := []Button{
		{ActionID: "approve", Value: a.ID, Label: "Approve", Style: "primary"},
		{ActionID: "deny", Value: a.ID, Label: "Deny", Style: "danger"},
	}
	if fmt.Sprint(m.Buttons) != fmt.Sprint(wantButtons) {
		t.Errorf("buttons = %+v, want %+v", m.Buttons, wantButtons)
	}

	// Few targets: all listed, no "more".
	small := cardRotation(cardPlan(t, false, cardTargets(2, 0)))
	text = RenderApprovalRequest(rotation.View{Rotation: small, Approval: a}).Text
	if !strings.Contains(text, "in 2 groups/locations") || strings.Contains(text, "more") {
		t.Errorf("small approval request:\n%s", text)
	}
}

// TestRenderProgress pins the progress line format.
func TestRenderProgress(t *testing.T) {
	cases := []struct {
		p    rotation.Progress
		want string
	}{
		{rotation.Progress{HeartbeatsDone: 2, HeartbeatsNeeded: 3, OnNewPolicy: 8412, Online: 9000, Left: 4 * time.Minute},
			"heartbeat 2/3 ▓▓▓▓▓▓▓▓░ 8,412/9,000 on new policy (93%) · 4m left"},
		{rotation.Progress{HeartbeatsDone: 0, HeartbeatsNeeded: 3, OnNewPolicy: 0, Online: 500, Left: time.Hour + 5*time.Minute},
			"heartbeat 0/3 ░░░░░░░░░ 0/500 on new policy (0%) · 1h05m left"},
		{rotation.Progress{HeartbeatsDone: 3, HeartbeatsNeeded: 3, OnNewPolicy: 999, Online: 1000, Left: 12 * time.Second},
			"heartbeat 3/3 ▓▓▓▓▓▓▓▓░ 999/1,000 on new policy (99%) · 12s left"},
		{rotation.Progress{HeartbeatsDone: 3, HeartbeatsNeeded: 3, OnNewPolicy: 1000, Online: 1000},
			"heartbeat 3/3 ▓▓▓▓▓▓▓▓▓ 1,000/1,000 on new policy (100%) · 0s left"},
		{rotation.Progress{HeartbeatsDone: 1, HeartbeatsNeeded: 3, Online: 0, Left: 30 * time.Second},
			"heartbeat 1/3 ▓▓▓▓▓▓▓▓▓ 0/0 on new policy (100%) · 30s left"},
		{rotation.Progress{DeadlineOnly: true, Left: 89*24*time.Hour + 23*time.Hour},
			"straggler window · 89d 23h left"},
	}
	for _, c := range cases {
		if got := RenderProgress(c.p); got != c.want {
			t.Errorf("RenderProgress(%+v)\n got %q\nwant %q", c.p, got, c.want)
		}
	}
}

func TestRenderCompactDurationAndThousands(t *testing.T) {
	durs := map[time.Duration]string{
		-time.Second:                         "0s",
		0:                                    "0s",
		500 * time.Millisecond:               "1s",
		12 * time.Second:                     "12s",
		59 * time.Second:                     "59s",
		4 * time.Minute:                      "4m",
		4*time.Minute + 59*time.Second:       "4m",
		time.Hour + 5*time.Minute:            "1h05m",
		23*time.Hour + 59*time.Minute:        "23h59m",
		24 * time.Hour:                       "1d 0h",
		89*24*time.Hour + 23*time.Hour + 5e9: "89d 23h",
	}
	for d, want := range durs {
		if got := compactDuration(d); got != want {
			t.Errorf("compactDuration(%s) = %q, want %q", d, got, want)
		}
	}
	nums := map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 9000: "9,000", 1234567: "1,234,567", -1234: "-1,234"}
	for n, want := range nums {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRenderText(t *testing.T) {
	if got := RenderText(Message{Text: "hello"}); got != "hello" {
		t.Errorf("plain: %q", got)
	}
	m := Message{Text: "vote", Buttons: []Button{{ActionID: "approve", Label: "Approve"}, {ActionID: "deny", Label: "Deny"}}}
	if got := RenderText(m); got != "vote\n[Approve] [Deny]" {
		t.Errorf("buttons: %q", got)
	}
}

// TestCardCompletedWithSuspectedOrphans: a completion with suspected orphans never
// reads as a success on the card, and shows the four counts.
func TestCardCompletedWithSuspectedOrphans(t *testing.T) {
	r := cardRotation(cardPlan(t, false, cardTargets(3, 0)))
	doneUpTo(&r, len(r.Steps))
	r.Status = rotation.StatusCompleted
	r.Report = &rotation.Report{ClientsTotal: 10, OnNew: 6, SuspectedOrphaned: 2, SuspectedOrphanedNames: []string{"WKS-1", "WKS-2"}, OfflineBefore: 1, NeverSeen: 1, NotSeen: 4}
	text := RenderCard(rotation.View{Rotation: r}, cardT0).Text
	if strings.Contains(text, "🏁 completed") || !strings.Contains(text, "NOT cleanly: 2 clients suspected orphaned") {
		t.Errorf("card reads as a success:\n%s", text)
	}
	if !strings.Contains(text, "6 on the new certificate · 2 suspected orphaned · 1 offline since before the change · 1 never seen") || !strings.Contains(text, "suspected orphaned: WKS-1, WKS-2") {
		t.Errorf("card lacks the report's counts:\n%s", text)
	}
}
