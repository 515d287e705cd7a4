package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"sepmbot/approvals"
	"sepmbot/rotation"
)

// TestRenderApproval200Groups: a request over 200 groups is cut to the console's
// limit with "…and N more", and stays within every line limit.
func TestRenderApproval200Groups(t *testing.T) {
	p := cardPlan(t, false, cardTargets(200, 0))
	r := cardRotation(p)
	doneUpTo(&r, p.StepIndex("approval"))
	activate(&r, cardT0.Add(2*time.Minute))
	m := RenderApprovalRequest(rotation.View{Rotation: r, Approval: cardApproval()})
	if len(m.List) != 200 {
		t.Fatalf("model lists %d groups, want all 200 (renderers cut)", len(m.List))
	}
	text := RenderText(m)
	checkGolden(t, "approval_request_200_groups", text)
	if !strings.Contains(text, "in 200 groups/locations") || !strings.Contains(text, "…and 186 more") {
		t.Errorf("200 groups not truncated as expected:\n%s", text)
	}
	if n := strings.Count(text, "\n  • "); n != ConsoleLimits.List {
		t.Errorf("%d list lines, want %d", n, ConsoleLimits.List)
	}
}

// TestRenderApprovalDecided: a decided request shows its verdict first and keeps no
// live button.
func TestRenderApprovalDecided(t *testing.T) {
	p := cardPlan(t, false, cardTargets(3, 0))
	r := cardRotation(p)
	doneUpTo(&r, p.StepIndex("approval"))
	activate(&r, cardT0.Add(2*time.Minute))
	a := cardApproval("console:bob", "console:carol")
	a.DecidedAt = cardT0.Add(4 * time.Minute)
	v := rotation.View{Rotation: r, Approval: a}
	if !ApprovalDecided(v, cardT0) {
		t.Fatal("an approved request is not decided")
	}
	m := RenderApprovalDecided(v, cardT0.Add(5*time.Minute))
	text := RenderText(m)
	checkGolden(t, "approval_decided", text)
	if !strings.Contains(text, "✅ approved") || !strings.Contains(text, "approved by bob and carol") || strings.Contains(text, "[Approve]") {
		t.Errorf("decided request:\n%s", text)
	}
	for _, b := range m.Buttons {
		if !b.Disabled {
			t.Errorf("live button on a decided request: %+v", b)
		}
	}
	d := cardApproval()
	d.State, d.DeniedBy, d.DenyReason = approvals.StateRejected, "console:carol", "not during the audit"
	if text := RenderText(RenderApprovalDecided(rotation.View{Rotation: r, Approval: d}, cardT0)); !strings.Contains(text, "❌ denied by carol: not during the audit") {
		t.Errorf("denied request:\n%s", text)
	}
	e := cardApproval()
	if !ApprovalDecided(rotation.View{Approval: e}, e.Expires.Add(time.Second)) || ApprovalDecided(rotation.View{Approval: e}, e.Expires.Add(-time.Second)) {
		t.Error("expiry does not decide a pending request exactly at its end")
	}
}

// TestRenderTextPrintable: control and bidi characters from SEPM or a user never
// reach the terminal; the body keeps its line breaks, a single line does not.
func TestRenderTextPrintable(t *testing.T) {
	m := Message{Title: "R1\x1b[2J", Text: "line one\nline\u202etwo", Context: []string{"group\nname\x07 \u2066x\u2069"}}
	got := RenderText(m)
	if want := "*R1[2J*\nline one\nlinetwo\ngroupname x"; got != want {
		t.Errorf("RenderText = %q, want %q", got, want)
	}
}

// TestRenderPlanWords: the plan names Broadcom's steps, never our own documents, and
// a site with 200 groups is cut in chat, not refused.
func TestRenderPlanWords(t *testing.T) {
	p := cardPlan(t, false, cardTargets(200, 0))
	for _, text := range []string{RenderPlan(p), RenderText(PlanMessage(p))} {
		for _, w := range []string{"Broadcom steps 1-4", "Broadcom step 5", "Broadcom step 8", "after Broadcom step 9"} {
			if !strings.Contains(text, w) {
				t.Errorf("plan lacks %q", w)
			}
		}
		if strings.Contains(text, "seed") {
			t.Errorf("plan names our documents:\n%s", text)
		}
	}
	if text := RenderText(PlanMessage(p)); !strings.Contains(text, "…and 186 more") || strings.Count(text, "\n") > 60 {
		t.Errorf("200 groups not cut in chat:\n%s", text)
	}
	for in, want := range map[string]string{"1-4": "Broadcom steps 1-4", "5": "Broadcom step 5", "after 9": "after Broadcom step 9", "offline clients": "Broadcom: offline clients", "abort": "revert", "": "not in Broadcom's steps"} {
		if got := BroadcomStep(in); got != want {
			t.Errorf("BroadcomStep(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuditKindNouns(t *testing.T) {
	for in, want := range map[string]string{"vote-voted": "vote", "vote-repeat": "vote", "vote-refused": "vote", "step-done": "step-finished", "sepm-change": "sepm-change", "step-started": "step-started"} {
		if got := AuditKind(in); got != want {
			t.Errorf("AuditKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimitsCut: Fit and Clip never exceed their limit and say what was cut.
func TestLimitsCut(t *testing.T) {
	items := make([]string, 200)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	for _, n := range []int{1, 2, 15, 199, 200, 500} {
		got := Fit(items, n)
		if len(got) > n {
			t.Errorf("Fit(200, %d) kept %d", n, len(got))
		}
		if n < 200 && got[len(got)-1] != AndMore(200-(n-1)) {
			t.Errorf("Fit(200, %d) ends %q", n, got[len(got)-1])
		}
	}
	if got := Clip("héllo wörld", 6); got != "héllo…" {
		t.Errorf("Clip = %q", got)
	}
	text := strings.Repeat("a line of text\n", 400)
	if got := ClipLines(text, 3000); len([]rune(got)) > 3000 || !strings.Contains(got, "more lines") {
		t.Errorf("ClipLines: %d runes, %q", len([]rune(got)), got[len(got)-40:])
	}
	for _, l := range []Limits{ConsoleLimits, SlackLimits, DiscordLimits} {
		if l.Title == 0 || l.Text == 0 || l.List == 0 || l.ButtonLabel == 0 {
			t.Errorf("limits %+v leave something unbounded", l)
		}
	}
}

// TestFittedNeutralisesSEPMAndUserText: a group name or a deny reason that tries to
// notify the channel or hide a link reaches Slack and Discord as inert text, and a
// request over 200 groups fits each platform's limits.
func TestFittedNeutralisesSEPMAndUserText(t *testing.T) {
	targets := cardTargets(200, 0)
	targets[0].Path = "<!channel> @everyone [login](https://evil.example)"
	p := cardPlan(t, false, targets)
	r := cardRotation(p)
	doneUpTo(&r, p.StepIndex("approval"))
	activate(&r, cardT0)
	a := cardApproval()
	a.State, a.DeniedBy, a.DenyReason = approvals.StateRejected, "console:carol", "<@U0BOSS> <@80351110224678912> see <https://x.example|here>"
	for _, m := range []Message{RenderApprovalRequest(rotation.View{Rotation: r, Approval: a}), RenderApprovalDecided(rotation.View{Rotation: r, Approval: a}, cardT0)} {
		s := Fitted(m, SlackLimits, EscapeSlack)
		d := Fitted(m, DiscordLimits, EscapeDiscord)
		all := func(m Message) string {
			return strings.Join(append(append([]string{m.Title, m.Text}, m.List...), m.Context...), "\n")
		}
		for _, bad := range []string{"<!channel>", "<@U0BOSS>", "<https://"} {
			if strings.Contains(all(s), bad) {
				t.Errorf("slack text keeps %q", bad)
			}
		}
		for _, bad := range []string{"@everyone", "[login](", "<@80351110224678912>"} {
			if strings.Contains(all(d), bad) {
				t.Errorf("discord text keeps %q", bad)
			}
		}
		if len(s.List) != SlackLimits.List || !strings.HasPrefix(s.List[len(s.List)-1], "…and ") {
			t.Errorf("slack list %d items, ends %q", len(s.List), s.List[len(s.List)-1])
		}
		for _, b := range d.Buttons {
			if len([]rune(b.Label)) > DiscordLimits.ButtonLabel {
				t.Errorf("button label %q too long", b.Label)
			}
		}
	}
}
