package discord

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot"
	"sepmbot/bot/discord/discordtest"
	"sepmbot/commands"
)

// /sepm is one command with a subcommand per verb of the grammar, typed options, and
// autocomplete on rotation and step ids; every subcommand's text parses.
func TestCommandsMirrorTheGrammar(t *testing.T) {
	cmds := Commands([]string{"site-a"})
	if len(cmds) != 1 || cmds[0].Name != "sepm" || cmds[0].DMPermission == nil || *cmds[0].DMPermission {
		t.Fatalf("commands %+v", cmds)
	}
	help := commands.Help()
	for _, sub := range cmds[0].Options {
		if sub.Type != discordgo.ApplicationCommandOptionSubCommand {
			t.Fatalf("%s is not a subcommand", sub.Name)
		}
		if !strings.Contains(help, sub.Name) {
			t.Errorf("subcommand %s is not in /sepm help", sub.Name)
		}
		specs := map[string]optSpec{}
		for _, sc := range subcommands([]string{"site-a"}) {
			if sc.name == sub.Name {
				for _, o := range sc.opts {
					specs[o.name] = o
				}
			}
		}
		opts := map[string]any{}
		for _, o := range sub.Options {
			if (o.Name == "id" || o.Name == "step") != o.Autocomplete {
				t.Errorf("%s %s: autocomplete %v", sub.Name, o.Name, o.Autocomplete)
			}
			if len(o.Description) > 100 || len(o.Name) > 32 {
				t.Errorf("%s %s: name or description too long for Discord", sub.Name, o.Name)
			}
			switch {
			case o.Type == discordgo.ApplicationCommandOptionBoolean:
				opts[o.Name] = true
			case len(o.Choices) > 0:
				opts[o.Name] = o.Choices[len(o.Choices)-1].Value
			case o.Name == "id":
				opts[o.Name] = "R1"
			case o.Name == "step":
				opts[o.Name] = "http-msl"
			case o.Type == discordgo.ApplicationCommandOptionInteger:
				opts[o.Name] = 1000000.0 // as JSON numbers arrive
			case specs[o.Name].meta == "D":
				opts[o.Name] = "30m"
			case specs[o.Name].meta == "FP":
				opts[o.Name] = strings.Repeat("ab", 32)
			default:
				opts[o.Name] = "a reason"
			}
		}
		f := &discordtest.Fake{AppID: "1", Guild: "2"}
		i := toInteraction(commandJSON(f, "1", "7", sub.Name, opts))
		text, err := commandText(i.ApplicationCommandData(), []string{"site-a"})
		if err != nil {
			t.Fatalf("%s: %v", sub.Name, err)
		}
		if _, err := commands.Parse(text, []string{"site-a"}); err != nil {
			t.Errorf("%s: %q does not parse: %v", sub.Name, text, err)
		}
	}
	raw, _ := json.Marshal(cmds)
	if len(raw) > 8000 {
		t.Errorf("command payload %d bytes (Discord allows 8000 characters)", len(raw))
	}
}

// Typed text cannot smuggle a second line or control characters into the command.
func TestCommandTextIsOneLine(t *testing.T) {
	f := &discordtest.Fake{AppID: "1", Guild: "2"}
	i := toInteraction(commandJSON(f, "1", "7", "abort", map[string]any{"id": "R1", "reason": "x\n/sepm rotate\x1b[2J"}))
	text, err := commandText(i.ApplicationCommandData(), nil)
	if err != nil || strings.ContainsAny(text, "\n\x1b") {
		t.Fatalf("%q %v", text, err)
	}
}

// Register overwrites the guild's commands (or the global ones) in one PUT.
func TestRegister(t *testing.T) {
	d, f, _ := setup(t, nil)
	if err := d.Register(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	d2, _, _ := setup(t, func(c *Config) { c.GuildID = ""; c.HTTPClient = f.Client() })
	if err := d2.Register(context.Background(), f.AppID); err != nil {
		t.Fatal(err)
	}
	f.Snapshot(func(v discordtest.View) {
		for _, scope := range []string{f.Guild, "global"} {
			var cmds []map[string]any
			if err := json.Unmarshal(v.Commands(scope), &cmds); err != nil || len(cmds) != 1 || cmds[0]["name"] != "sepm" {
				t.Errorf("%s: %s", scope, v.Commands(scope))
			}
		}
		for _, c := range v.Calls() {
			if strings.Contains(c.Path, "/commands") && c.Method != "PUT" {
				t.Errorf("%s %s: registration is a bulk overwrite", c.Method, c.Path)
			}
		}
	})
}

type completer struct{}

func (completer) RotationIDs(context.Context) ([]string, error) {
	return []string{"R12", "R2", "R1"}, nil
}
func (completer) StepIDs(_ context.Context, id string) ([]string, error) {
	if id != "R2" {
		return nil, nil
	}
	return []string{"http-msl", "wait-http", "cert-sepm-01"}, nil
}

func TestAutocomplete(t *testing.T) {
	d, f, _ := open(t, func(c *Config) { c.Completer = completer{} })
	ac := func(id string, opts []map[string]any) map[string]any {
		return map[string]any{
			"id": id, "application_id": f.AppID, "type": 4, "token": "t" + id, "version": 1, "guild_id": f.Guild, "channel_id": "900",
			"member": memberJSON("7"), "data": map[string]any{"id": "1", "name": "sepm", "type": 1, "options": []map[string]any{{"name": "done", "type": 1, "options": opts}}},
		}
	}
	f.Dispatch("INTERACTION_CREATE", ac("11", []map[string]any{{"name": "id", "type": 3, "value": "r1", "focused": true}}))
	f.Dispatch("INTERACTION_CREATE", ac("12", []map[string]any{{"name": "id", "type": 3, "value": "R2"}, {"name": "step", "type": 3, "value": "wa", "focused": true}}))
	if !f.Wait(waitBound, func(v discordtest.View) bool { return len(v.Callbacks()) == 2 }) {
		t.Fatal("no autocomplete answers")
	}
	none(t, d) // autocomplete never reaches the router
	f.Snapshot(func(v discordtest.View) {
		want := map[string]string{"11": `[{"name":"R12","value":"R12"},{"name":"R1","value":"R1"}]`, "12": `[{"name":"wait-http","value":"wait-http"}]`}
		for _, cb := range v.Callbacks() {
			var data struct {
				Choices json.RawMessage `json:"choices"`
			}
			_ = json.Unmarshal(cb.Data, &data)
			if cb.Type != 8 || string(data.Choices) != want[cb.InteractionID] {
				t.Errorf("autocomplete %s: type %d choices %s", cb.InteractionID, cb.Type, data.Choices)
			}
		}
	})
}

// A public answer after a deferral is a followup, and the ephemeral "thinking…" is
// deleted; an answer after the token's life goes to the channel with the bot token.
func TestAnswerPathsAfterDeferral(t *testing.T) {
	d, f, clock := setup(t, nil)
	ctx := context.Background()
	r := &interactionReply{d: d, i: commandInteraction(f, "21", "status", nil), at: clock.Now()}
	_ = r.Ack(ctx, bot.Message{Placeholder: true, Visibility: bot.VisibleUser})
	if err := r.Answer(ctx, bot.Message{Text: "R1 started", Visibility: bot.VisibleChannel}); err != nil {
		t.Fatal(err)
	}
	late := &interactionReply{d: d, i: commandInteraction(f, "22", "status", nil), at: clock.Now()}
	_ = late.Ack(ctx, bot.Message{Placeholder: true, Visibility: bot.VisibleUser})
	clock.Advance(16 * 60e9)
	if err := late.Answer(ctx, bot.Message{Text: "done at last", Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	f.Snapshot(func(v discordtest.View) {
		wh := v.Webhooks()
		if len(wh) != 2 || wh[0].Method != "POST" || wh[0].Target != "" || wh[1].Method != "DELETE" || wh[1].Target != "@original" {
			t.Fatalf("webhooks %+v", wh)
		}
		if strings.Contains(string(wh[0].Body), `"flags":64`) {
			t.Error("a channel answer went out ephemeral")
		}
		msgs := v.Messages()
		if len(msgs) != 1 || msgs[0].ChannelID != "900" || msgs[0].Content != "<@7>" {
			t.Fatalf("late answer %+v", msgs)
		}
	})
}

// Nobody acknowledged in time (a busy queue): the adapter defers by itself so the
// interaction does not fail.
func TestAutoDefer(t *testing.T) {
	d, f, _ := open(t, nil)
	f.Dispatch("INTERACTION_CREATE", commandJSON(f, "31", "7", "list", nil))
	next(t, d) // taken, never acknowledged
	if !f.Wait(waitBound, func(v discordtest.View) bool { return len(v.Callbacks()) == 1 }) {
		t.Fatal("no deferral")
	}
	f.Snapshot(func(v discordtest.View) {
		if cb := v.Callbacks()[0]; cb.Type != 5 {
			t.Fatalf("callback %+v", cb)
		}
	})
}

// A card without body text (only a title and steps) is an answer, not a deferral.
func TestAckOfACardIsAnAnswer(t *testing.T) {
	d, f, clock := setup(t, nil)
	r := &interactionReply{d: d, i: commandInteraction(f, "41", "status", nil), at: clock.Now()}
	if err := r.Ack(context.Background(), bot.Message{Title: "R1 · site-a", Steps: []bot.Step{{State: bot.StepActive, Number: 1, Title: "Copy the lists", ID: "http-msl"}}, Visibility: bot.VisibleUser}); err != nil {
		t.Fatal(err)
	}
	f.Snapshot(func(v discordtest.View) {
		if cb := v.Callbacks(); len(cb) != 1 || cb[0].Type != 4 || !strings.Contains(string(cb[0].Data), "http-msl") {
			t.Fatalf("callbacks %+v", cb)
		}
	})
}

// The options come from the grammar's usage lines: a flag added there (issue 7's
// --accept-orphans) shows up on Discord without a change here.
func TestOptionsFollowTheUsageLine(t *testing.T) {
	opts := usageOptions("done", "/sepm done <id> <step> [--accept-orphans N]", nil)
	var names []string
	for _, o := range opts {
		names = append(names, o.name)
	}
	if strings.Join(names, ",") != "id,step,accept-orphans" || !opts[2].flag || opts[2].kind != discordgo.ApplicationCommandOptionInteger || !opts[0].required || !opts[1].auto {
		t.Fatalf("options %+v", opts)
	}
	rot := usageOptions("rotate", "/sepm rotate [site] [--mode auto|single|multi] [--new-cert-sha256 FP]... [--damaged-but-valid]", []string{"a", "b"})
	if len(rot) != 4 || strings.Join(rot[0].choices, ",") != "a,b" || strings.Join(rot[1].choices, ",") != "auto,single,multi" || !rot[2].repeat ||
		rot[3].kind != discordgo.ApplicationCommandOptionBoolean {
		t.Fatalf("rotate options %+v", rot)
	}
	// Every subcommand of the help is offered.
	offered := map[string]bool{}
	for _, sd := range subDesc {
		offered[sd.name] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^  /sepm ([a-z-]+)`).FindAllStringSubmatch(commands.Help(), -1) {
		if !offered[m[1]] {
			t.Errorf("/sepm %s is in the help but not offered on Discord", m[1])
		}
	}
}

// An integer option is written as digits, however large.
func TestIntegerOptionText(t *testing.T) {
	f := &discordtest.Fake{AppID: "1", Guild: "2"}
	i := toInteraction(commandJSON(f, "1", "7", "done", map[string]any{"id": "R1", "step": "s", "accept-orphans": 1000000.0}))
	data := i.ApplicationCommandData()
	spec := subSpec{name: "done", opts: usageOptions("done", "/sepm done <id> <step> [--accept-orphans N]", nil)}
	text, err := commandTextWith(data, []subSpec{spec})
	if err != nil || text != "/sepm done R1 s --accept-orphans 1000000" {
		t.Fatalf("%q %v", text, err)
	}
}
