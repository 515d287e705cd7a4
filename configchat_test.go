package main

import (
	"strings"
	"testing"

	"sepmbot/bot/discord/discordtest"
	"sepmbot/bot/slack/slackfake"
)

// TestConfigCheckChatTokens: config check tries the Slack and Discord tokens against
// the platforms (here their fakes): good tokens are OK lines, a refused token or a
// platform named in --chat without one is a precise problem and exit non-zero, and
// no token reaches the output.
func TestConfigCheckChatTokens(t *testing.T) {
	site := checkSim(t)
	sf := slackfake.New(slackfake.Options{})
	defer sf.Close()
	df := discordtest.New(nil)
	df.Token = "discord-good-token-77"
	defer df.Close()
	o := sf.Options()
	check := func(slackBot, slackApp, discordTok string, chat ...string) (string, error) {
		t.Setenv("SLACK_BOT_TOKEN", slackBot)
		t.Setenv("SLACK_APP_TOKEN", slackApp)
		t.Setenv("DISCORD_BOT_TOKEN", discordTok)
		c := goodCheck(t, site, checkPassword)
		c.Chat, c.SlackAPIURL, c.discordClient = chat, sf.APIURL(), df.Client()
		out, err := runCheck(t, c)
		for _, tok := range []string{slackBot, slackApp, discordTok} {
			if tok != "" && strings.Contains(out, tok) {
				t.Errorf("the output holds a token:\n%s", out)
			}
		}
		return out, err
	}
	out, err := check(o.BotToken, o.AppToken, "discord-good-token-77", "slack")
	if err != nil || !strings.Contains(out, "slack: the bot token works") || !strings.Contains(out, "opens Socket Mode") || !strings.Contains(out, "discord: the bot token works") {
		t.Fatalf("good tokens: err %v\n%s", err, out)
	}
	// Several platforms at once: each is checked, and the combination is no problem.
	out, err = check(o.BotToken, o.AppToken, "discord-good-token-77", "console", "slack", "discord")
	if err != nil || !strings.Contains(out, "ok:      chat: console, slack, discord") || !strings.Contains(out, "slack: the bot token works") ||
		!strings.Contains(out, "discord: the bot token works") || strings.Contains(out, "PROBLEM") {
		t.Fatalf("console, slack and discord: err %v\n%s", err, out)
	}
	out, err = check("xoxb-wrong-token-1", "", "discord-bad-token-99", "console")
	if err == nil || !strings.Contains(out, "Slack refused SLACK_BOT_TOKEN") || !strings.Contains(out, "Discord refused DISCORD_BOT_TOKEN") {
		t.Fatalf("refused tokens: err %v\n%s", err, out)
	}
	out, err = check("", "", "", "slack", "discord")
	if err == nil || !strings.Contains(out, "--chat slack but SLACK_BOT_TOKEN") || !strings.Contains(out, "--chat discord but DISCORD_BOT_TOKEN") {
		t.Fatalf("missing tokens: err %v\n%s", err, out)
	}
}
