package main

import (
	"context"
	"testing"

	"sepmbot/bot"
)

type groupsPlatform struct {
	bot.Platform
	name   string
	groups map[string][]string
}

func (g groupsPlatform) Name() string { return g.name }
func (g groupsPlatform) GroupsOf(_ context.Context, user string) []string {
	return g.groups[user]
}

type rolesPlatform struct {
	bot.Platform
	roles map[string][]string
}

func (rolesPlatform) Name() string { return "discord" }
func (r rolesPlatform) MemberRoles(_ context.Context, user string) ([]string, error) {
	return r.roles[user], nil
}

// TestApproverGroupsComeFromThePlatform: at the dangerous step the engine's role
// check finds a group approver through the platform that knows the groups (Slack's
// user groups, Discord's member roles); a member of no approver group is not one,
// and a platform that cannot tell makes the answer unknown (the vote does not count).
func TestApproverGroupsComeFromThePlatform(t *testing.T) {
	roles, err := bot.ParseRoles(nil, []string{"slack-group:S1", "discord-role:77"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rr := roles.Resolver()
	rr.Groups = chatGroups([]chatOutlet{
		{Platform: groupsPlatform{name: "slack", groups: map[string][]string{"UBOB": {"S1"}, "UEVE": {"S9"}}}},
		{Platform: rolesPlatform{roles: map[string][]string{"42": {"77"}}}},
	})
	ctx := context.Background()
	for user, want := range map[string]bool{"slack:UBOB": true, "slack:UEVE": false, "discord:42": true, "discord:43": false} {
		if ok, err := rr.IsApprover(ctx, user); err != nil || ok != want {
			t.Errorf("%s: approver %v (%v), want %v", user, ok, err, want)
		}
	}
	rr.Groups = chatGroups(nil) // no platform can tell
	if ok, err := rr.IsApprover(ctx, "slack:UBOB"); err == nil || ok {
		t.Errorf("without the platform: approver %v, err %v; want unknown", ok, err)
	}
}
