package slack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"sepmbot/bot"
	"sepmbot/bot/slack/slackfake"
)

// TestRendererKeepsBlockKitLimits posts messages far over every limit through the
// fake, which refuses anything Slack would with invalid_blocks.
func TestRendererKeepsBlockKitLimits(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, nil)
	long := strings.Repeat("é<!channel> ", 900)
	var groups, ctxLines []string
	for i := range 200 {
		groups = append(groups, fmt.Sprintf("My Company\\Site A\\Group %03d / Default", i))
	}
	for i := range 30 {
		ctxLines = append(ctxLines, fmt.Sprintf("context %d %s", i, long[:400]))
	}
	var steps []bot.Step
	for i := range 120 {
		steps = append(steps, bot.Step{State: bot.StepPending, Number: i + 1, Title: "Wait " + long[:200], ID: fmt.Sprintf("s%d", i), Detail: long[:500]})
	}
	var fields []bot.Field
	for i := range 14 {
		fields = append(fields, bot.Field{Label: fmt.Sprint("f", i), Value: long})
	}
	m := bot.Message{
		Title: strings.Repeat("🔐 Approval needed ", 20), Status: long, Text: long + long, Fields: fields,
		List: groups, Steps: steps, Context: ctxLines,
		Progress: &bot.Progress{Label: "wait 2 of 4", Elapsed: time.Hour, Total: 24 * time.Hour, Done: 8412, Of: 9000, Unit: "clients checked in", Notes: []string{long}},
		Buttons: []bot.Button{
			{ActionID: "approve", Value: "req-1", Label: strings.Repeat("Approve ", 20), Style: "primary", Confirm: long},
			{ActionID: "deny", Value: "req-1", Label: "Deny", Style: "danger"},
		},
	}
	ts, err := h.a.Post(context.Background(), "C1", m)
	if err != nil {
		t.Fatalf("post: %v (fake refusals %v)", err, fake.Refusals())
	}
	got, _ := fake.Message("C1", ts)
	text := slackfake.BlockText(got.Blocks)
	if strings.Contains(text, "<!channel>") || strings.Contains(got.Text, "<!channel>") {
		t.Fatal("a broadcast mention survived the renderer")
	}
	if !strings.Contains(text, "…and ") {
		t.Fatal("nothing says what was cut")
	}
	btns := slackfake.Buttons(got.Blocks)
	if len(btns) != 2 || btns[0].Confirm == "" || btns[1].Confirm == "" || btns[0].ActionID != "approve" || btns[0].Value != "req-1" {
		t.Fatalf("buttons %+v", btns)
	}
	// Decided: the same message edited to its verdict keeps no live button.
	m.Title, m.Buttons[0].Disabled, m.Buttons[1].Disabled = "🔐 Approval for R1 · site-a: ✅ approved", true, true
	if err := h.a.Edit(context.Background(), "C1", ts, m); err != nil {
		t.Fatalf("edit: %v (%v)", err, fake.Refusals())
	}
	got, _ = fake.Message("C1", ts)
	if b := slackfake.Buttons(got.Blocks); len(b) != 0 {
		t.Fatalf("decided request still has buttons %+v", b)
	}
	if len(fake.Refusals()) != 0 {
		t.Fatalf("fake refused %v", fake.Refusals())
	}
}

func TestFakeRefusesOverLimitBlocks(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	for _, raw := range []string{
		`[{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("a", 3001) + `"}}]`,
		`[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("a", 151) + `"}}]`,
		`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"` + strings.Repeat("a", 76) + `"}}]}]`,
		`[` + strings.Repeat(`{"type":"divider"},`, 50) + `{"type":"divider"}]`,
		`[{"type":"section","fields":[` + strings.Repeat(`{"type":"mrkdwn","text":"f"},`, 10) + `{"type":"mrkdwn","text":"f"}]}]`,
		`[{"type":"section","fields":[{"type":"mrkdwn","text":"` + strings.Repeat("a", 2001) + `"}]}]`,
	} {
		a, err := fake.PostSigned(fake.APIURL()+"chat.postMessage", "", "application/x-www-form-urlencoded",
			[]byte("token=xoxb-test&channel=C1&blocks="+urlEscape(raw)), 0)
		if err != nil || !strings.Contains(string(a.Body), "invalid_blocks") {
			t.Errorf("fake accepted %.60s…: %s", raw, a.Body)
		}
	}
}

func urlEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "#", "%23").Replace(s)
}

// TestRendererLeavesOutWhatIsEmptyOncePrintable: a title of control characters,
// a blank status and a label-less button would be invalid_blocks.
func TestRendererLeavesOutWhatIsEmptyOncePrintable(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), false, nil)
	m := bot.Message{Title: "\x1b\x07\u202e", Status: "  ", Text: "\n\n", Context: []string{"", "\x00"},
		Fields: []bot.Field{{Label: "", Value: ""}}, Buttons: []bot.Button{{ActionID: "approve", Value: "A1"}}}
	if _, err := h.a.Post(context.Background(), "C1", m); err != nil {
		t.Fatalf("post: %v (%v)", err, fake.Refusals())
	}
}

func TestEscCutsWholeLinesAndSaysHowMany(t *testing.T) {
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf("line %03d <@U1> & more", i))
	}
	got := esc(strings.Join(lines, "\n"), 3000, true)
	if runes(got) > 3000 || !strings.HasSuffix(got, " more lines") || strings.Contains(got, "<@") {
		t.Fatalf("cut: %d runes, ends %q", runes(got), got[len(got)-30:])
	}
	if got := esc(strings.Repeat("<", 5000), 3000, false); runes(got) > 3000 || strings.Contains(got, "<") {
		t.Fatalf("one long line: %d runes", runes(got))
	}
	if got := esc("short <!here>", 3000, true); got != "short &lt;!here&gt;" {
		t.Fatalf("short: %q", got)
	}
}

// TestAckPayloadStaticReuse: a long text-only answer (the help) is rendered once and
// reused, and the reuse never mixes answers: another text, another visibility, or an
// answer too large for an ack each get their own.
func TestAckPayloadStaticReuse(t *testing.T) {
	long := strings.Repeat("a help line <!here>\n", 100)
	a1, ok1 := ackPayload(bot.Message{Text: long, Visibility: bot.VisibleUser})
	a2, ok2 := ackPayload(bot.Message{Text: long, Visibility: bot.VisibleUser})
	if !ok1 || !ok2 || string(a1) != string(a2) || strings.Contains(string(a1), "<!here>") {
		t.Fatalf("same help twice: ok %v %v, equal %v, escaped %v", ok1, ok2, string(a1) == string(a2), !strings.Contains(string(a1), "<!here>"))
	}
	other, _ := ackPayload(bot.Message{Text: long + "one more line", Visibility: bot.VisibleUser})
	if !strings.Contains(string(other), "one more line") {
		t.Errorf("another text got the cached answer")
	}
	placeholder, _ := ackPayload(bot.Message{Text: long, Visibility: bot.VisibleUser, Placeholder: true})
	if len(placeholder) == 0 {
		t.Errorf("placeholder with the same text: no payload")
	}
}

// TestLongTextShownWholeOverSections: a text longer than one section (the help is
// about 4,000 characters) is split between lines over several sections, each
// within 3,000, and nothing of it is cut.
func TestLongTextShownWholeOverSections(t *testing.T) {
	var lines []string
	for i := range 120 {
		lines = append(lines, fmt.Sprintf("line %03d: `/sepm rotate site-a` & <done> %s", i, strings.Repeat("x", 30)))
	}
	blocks, _ := render(bot.Message{Text: strings.Join(lines, "\n")})
	if len(blocks) < 3 {
		t.Fatalf("%d blocks for %d characters: want the text over several sections", len(blocks), len(strings.Join(lines, "\n")))
	}
	var got []string
	for _, b := range blocks {
		sb, ok := b.(*slack.SectionBlock)
		if !ok || sb.Text == nil {
			t.Fatalf("block %T", b)
		}
		if n := runes(sb.Text.Text); n > maxSectionText {
			t.Fatalf("section of %d runes", n)
		}
		got = append(got, strings.Split(sb.Text.Text, "\n")...)
	}
	if len(got) != len(lines) || strings.Contains(strings.Join(got, "\n"), "more lines") {
		t.Fatalf("%d of %d lines shown", len(got), len(lines))
	}
	if !strings.Contains(got[119], "&amp; &lt;done&gt;") {
		t.Fatalf("last line %q: not escaped", got[119])
	}
	// One line longer than a section is cut, never in the middle of an entity.
	l := clipEscaped(strings.Repeat("a", 2997)+"&amp;b", maxSectionText)
	if runes(l) > maxSectionText || strings.Contains(l, "&am…") || !strings.HasSuffix(l, "…") {
		t.Fatalf("clipped %q", l[2990:])
	}
}
