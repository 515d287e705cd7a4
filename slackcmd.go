package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"sepmbot/admin"
	"sepmbot/bot"
	slackbot "sepmbot/bot/slack"
	"sepmbot/config"
	"sepmbot/store"
)

// SlackFlags configure the Slack adapter (`--chat slack`). The tokens and the
// signing secret are read from the environment only (SLACK_BOT_TOKEN,
// SLACK_APP_TOKEN, SLACK_SIGNING_SECRET, or a file named by the same name with
// _FILE), never from flags, so they do not show in the process list.
type SlackFlags struct {
	SlackAPIURL     string   `name:"slack-api-url" default:"https://slack.com/api/" help:"Slack Web API base URL; Socket Mode's apps.connections.open follows it." env:"SLACK_API_URL"`
	SlackChannel    []string `name:"slack-channel" help:"Slack channel id (C…) where /sepm is accepted and rotations live; repeatable. The first is where a rotation with no recorded home lives." env:"SEPMBOT_SLACK_CHANNELS"`
	SlackListen     string   `name:"slack-listen" help:"HTTP mode: serve /slack/commands, /slack/interactivity and /slack/events on ADDR (needs SLACK_SIGNING_SECRET). Default: Socket Mode (SLACK_APP_TOKEN)." env:"SEPMBOT_SLACK_LISTEN"`
	SlackEditBudget int      `name:"slack-edit-budget" default:"50" help:"chat.update calls per minute for the whole workspace, shared by every card (Slack's Tier 3 allows about 50)."`
}

var slackChannelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// secretEnv reads NAME, or the file NAME_FILE names, and registers the value for
// redaction (config.Secret).
func secretEnv(name string) (string, error) { return config.Secret(name, "") }

// channels returns the --slack-channel ids as --channel entries.
func (f SlackFlags) channels() ([]string, error) {
	var out []string
	for _, item := range f.SlackChannel {
		for _, c := range strings.Split(item, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			if !slackChannelID.MatchString(c) {
				return nil, fmt.Errorf("--slack-channel %q: give the channel id (C0123ABC, from the channel's details), not its name", c)
			}
			out = append(out, "slack:"+c)
		}
	}
	return out, nil
}

// slackGroups lists the user group ids the roles name ("slack-group:S…").
func slackGroups(r bot.Roles) []string {
	var out []string
	for _, list := range [][]string{r.Operators, r.Approvers, r.Viewers} {
		for _, e := range list {
			if id, ok := strings.CutPrefix(e, "slack-group:"); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// slackPlatform builds the Slack adapter from the flags and the secrets secretOf
// reads (nil: the environment); counters may be nil.
func (f SlackFlags) slackPlatform(db *store.DB, roles bot.Roles, b BotFlags, counters slackbot.Counters, secretOf func(string) (string, error), log *slog.Logger) (*slackbot.Adapter, error) {
	if secretOf == nil {
		secretOf = secretEnv
	}
	botToken, err := secretOf("SLACK_BOT_TOKEN")
	if err != nil {
		return nil, err
	}
	appToken, err := secretOf("SLACK_APP_TOKEN")
	if err != nil {
		return nil, err
	}
	secret, err := secretOf("SLACK_SIGNING_SECRET")
	if err != nil {
		return nil, err
	}
	if botToken != "" && !strings.HasPrefix(botToken, "xoxb-") {
		return nil, errors.New("SLACK_BOT_TOKEN is not a bot token (xoxb-…)")
	}
	if f.SlackListen == "" && appToken != "" && !strings.HasPrefix(appToken, "xapp-") {
		return nil, errors.New("SLACK_APP_TOKEN is not an app-level token (xapp-…)")
	}
	api := f.SlackAPIURL
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	cfg := slackbot.Config{
		BotToken: botToken, APIURL: api, Groups: slackGroups(roles), Store: db,
		EditBudget: f.SlackEditBudget, CardInterval: b.CardInterval, Counters: counters, Log: log,
	}
	if f.SlackListen != "" {
		cfg.Listen, cfg.SigningSecret = f.SlackListen, secret
	} else {
		cfg.AppToken = appToken
	}
	return slackbot.New(cfg)
}

// defaultChannel is where a rotation with no recorded home lives on Slack.
func (f SlackFlags) defaultChannel() string {
	chs, _ := f.channels()
	if len(chs) > 0 {
		return strings.TrimPrefix(chs[0], "slack:")
	}
	return ""
}

// slackOutlet starts the Slack adapter when --chat names slack (nil otherwise) and
// adds its channels to --channel.
func (c *RunCmd) slackOutlet(ctx context.Context, db *store.DB, roles bot.Roles, counters slackbot.Counters, secretOf func(string) (string, error), log *slog.Logger) (*slackbot.Adapter, error) {
	if !slices.Contains(c.Chat, "slack") {
		return nil, nil
	}
	chs, err := c.SlackFlags.channels()
	if err != nil {
		return nil, err
	}
	c.BotFlags.Channel = append(c.BotFlags.Channel, chs...)
	sl, err := c.SlackFlags.slackPlatform(db, roles, c.BotFlags, counters, secretOf, log)
	if err != nil {
		return nil, err
	}
	if err := sl.Start(ctx); err != nil {
		return nil, err
	}
	return sl, nil
}

// slackMetrics counts the Slack adapter's API calls and 429s in the admin
// listener's metrics.
type slackMetrics struct{ m *admin.Metrics }

func (s slackMetrics) APICall(platform, method string)     { s.m.ChatCall(platform, method, nil) }
func (s slackMetrics) RateLimited(platform, method string) { s.m.ChatRateLimited(platform, method) }
