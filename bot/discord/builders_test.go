package discord

import (
	"encoding/json"

	"github.com/bwmarrin/discordgo"

	"sepmbot/bot/discord/discordtest"
)

// Interaction payloads as Discord sends them (gateway INTERACTION_CREATE data, or
// an HTTP endpoint's body).

func memberJSON(user string, roles ...string) map[string]any {
	if roles == nil {
		roles = []string{}
	}
	return map[string]any{"user": map[string]any{"id": user, "username": "u" + user}, "roles": roles}
}

func commandJSON(f *discordtest.Fake, id, user, sub string, opts map[string]any, roles ...string) map[string]any {
	var o []map[string]any
	for k, v := range opts {
		typ := 3
		switch v.(type) {
		case bool:
			typ = 5
		case float64:
			typ = 4
		}
		o = append(o, map[string]any{"name": k, "type": typ, "value": v})
	}
	return map[string]any{
		"id": id, "application_id": f.AppID, "type": 2, "token": "tok-" + id, "version": 1,
		"guild_id": f.Guild, "channel_id": "900", "member": memberJSON(user, roles...),
		"data": map[string]any{"id": "c1", "name": "sepm", "type": 1, "options": []map[string]any{{"name": sub, "type": 1, "options": o}}},
	}
}

func buttonJSON(f *discordtest.Fake, id, user, channel, message, customID string, roles ...string) map[string]any {
	return map[string]any{
		"id": id, "application_id": f.AppID, "type": 3, "token": "tok-" + id, "version": 1,
		"guild_id": f.Guild, "channel_id": channel, "member": memberJSON(user, roles...),
		"message": map[string]any{"id": message, "channel_id": channel},
		"data":    map[string]any{"custom_id": customID, "component_type": 2},
	}
}

func modalJSON(f *discordtest.Fake, id, user, channel, message, customID, reason string, roles ...string) map[string]any {
	return map[string]any{
		"id": id, "application_id": f.AppID, "type": 5, "token": "tok-" + id, "version": 1,
		"guild_id": f.Guild, "channel_id": channel, "member": memberJSON(user, roles...),
		"message": map[string]any{"id": message, "channel_id": channel},
		"data": map[string]any{"custom_id": customID, "components": []map[string]any{{"type": 1, "components": []map[string]any{
			{"type": 4, "custom_id": "reason", "value": reason},
		}}}},
	}
}

func toInteraction(m map[string]any) *discordgo.Interaction {
	raw, _ := json.Marshal(m)
	var i discordgo.Interaction
	if err := json.Unmarshal(raw, &i); err != nil {
		panic(err)
	}
	return &i
}

func commandInteraction(f *discordtest.Fake, id, sub string, opts map[string]any) *discordgo.Interaction {
	return toInteraction(commandJSON(f, id, "7", sub, opts))
}
