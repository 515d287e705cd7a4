package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"sepmbot/commands"
)

// Roles maps platform identities to roles. Users are named by platform and immutable
// id, never by display name: "slack:U024BE7LH", "discord:80351110224678912",
// "console:alice"; groups by "slack-group:S0614TZR7" or "discord-role:41771983423143937".
// "*" among the viewers lets everyone in the channel read.
type Roles struct {
	Operators, Approvers, Viewers []string
}

// knownKinds are the prefixes a role entry may carry.
var knownKinds = []string{"slack", "slack-group", "discord", "discord-role", "console"}

// ParseRoles validates comma-separated role lists (each list may also be given as
// several flags).
func ParseRoles(operators, approvers, viewers []string) (Roles, error) {
	var r Roles
	var err error
	if r.Operators, err = parseRoleList("operators", operators, false); err != nil {
		return r, err
	}
	if r.Approvers, err = parseRoleList("approvers", approvers, false); err != nil {
		return r, err
	}
	if r.Viewers, err = parseRoleList("viewers", viewers, true); err != nil {
		return r, err
	}
	return r, nil
}

func parseRoleList(flag string, in []string, starOK bool) ([]string, error) {
	var out []string
	for _, item := range in {
		for _, e := range strings.Split(item, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if e == "*" {
				if !starOK {
					return nil, fmt.Errorf("--%s: '*' is allowed only for viewers", flag)
				}
				out = append(out, e)
				continue
			}
			kind, id, ok := strings.Cut(e, ":")
			if !ok || id == "" || !slices.Contains(knownKinds, kind) {
				return nil, fmt.Errorf("--%s: %q is not platform:id (platform one of %s)", flag, e, strings.Join(knownKinds, ", "))
			}
			if strings.HasPrefix(id, "@") || strings.ContainsFunc(id, unicode.IsSpace) {
				return nil, fmt.Errorf("--%s: %q looks like a display name; give the immutable user or group id (e.g. slack:U024BE7LH, console:alice)", flag, e)
			}
			if slices.Contains(out, e) {
				continue // one identity named twice is still one (ApproverCount)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// groupKind is the role-entry prefix for a platform's groups.
func groupKind(platform string) string {
	switch platform {
	case "slack":
		return "slack-group"
	case "discord":
		return "discord-role"
	}
	return platform + "-group"
}

func matches(list []string, ev Event) bool {
	if slices.Contains(list, ev.UserKey()) {
		return true
	}
	for _, g := range ev.UserGroups {
		if slices.Contains(list, groupKind(ev.Platform)+":"+g) {
			return true
		}
	}
	return false
}

// Held returns the roles the event's user holds.
func (r Roles) Held(ev Event) []commands.Role {
	var held []commands.Role
	if matches(r.Operators, ev) {
		held = append(held, commands.Operator)
	}
	if matches(r.Approvers, ev) {
		held = append(held, commands.Approver)
	}
	if slices.Contains(r.Viewers, "*") || matches(r.Viewers, ev) {
		held = append(held, commands.Viewer)
	}
	return held
}

// IsApprover reports whether the event's user may approve.
func (r Roles) IsApprover(ev Event) bool { return matches(r.Approvers, ev) }

// ApproverCount is how many approver entries are configured (a group counts as one,
// since the bot cannot know its size at start).
func (r Roles) ApproverCount() int { return len(r.Approvers) }

// ApproverCheck answers the engine's re-check, at the dangerous step, that a counted
// voter still holds the approver role (it implements rotation.Roles). A user named in
// --approvers still is one; one who is not may hold it through a group, which only the
// platform can tell: while group entries are configured that user is given the benefit
// until the adapters resolve groups behind this check.
type ApproverCheck struct{ Roles Roles }

// IsApprover implements rotation.Roles.
func (a ApproverCheck) IsApprover(_ context.Context, user string) (bool, error) {
	if slices.Contains(a.Roles.Approvers, user) {
		return true, nil
	}
	for _, e := range a.Roles.Approvers {
		if kind, _, _ := strings.Cut(e, ":"); kind == "slack-group" || kind == "discord-role" {
			return true, nil
		}
	}
	return false, nil
}
