package bot

import (
	"context"
	"errors"
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

// ApproversOtherThan is how many approver entries could approve a rotation the
// event's user requests: every entry but the user's own. A group counts as one, even
// one the user belongs to (the bot cannot know its other members); the approval
// itself still counts only distinct people other than the requester.
func (r Roles) ApproversOtherThan(ev Event) int {
	n := 0
	for _, e := range r.Approvers {
		if e != ev.UserKey() {
			n++
		}
	}
	return n
}

// ErrGroupsUnresolved is returned by RoleResolver.IsApprover when a user is not named
// as an approver but approver groups of their platform are configured and nothing
// can tell whether the user is in them now.
var ErrGroupsUnresolved = errors.New("approver groups cannot be resolved")

// RoleResolver answers, for the engine at the dangerous step, whether a user still
// holds the approver role now: the votes were counted earlier, and roles can change
// in between (the configuration, after a restart; a group's members). It implements
// the engine's role resolver, IsApprover(ctx, user) (bool, error).
type RoleResolver struct {
	Roles Roles
	// Groups returns the platform groups the user (the id after "platform:") is a
	// member of now; the chat adapters provide it. When nil, a user named only
	// through a group cannot be confirmed (ErrGroupsUnresolved).
	Groups func(ctx context.Context, platform, id string) ([]string, error)
}

// Resolver returns a RoleResolver over r that resolves user entries only.
func (r Roles) Resolver() RoleResolver { return RoleResolver{Roles: r} }

// IsApprover reports whether user, a platform key such as "slack:U024BE7LH" or
// "console:bob", holds the approver role now: named directly, or a member of a
// configured approver group of its platform. An error means the answer is unknown;
// the engine must then not count the vote.
func (rr RoleResolver) IsApprover(ctx context.Context, user string) (bool, error) {
	platform, id, ok := strings.Cut(user, ":")
	if !ok || platform == "" || id == "" {
		return false, fmt.Errorf("role check: %q is not a platform:id user", user)
	}
	if slices.Contains(rr.Roles.Approvers, user) {
		return true, nil
	}
	prefix := groupKind(platform) + ":"
	hasGroups := slices.ContainsFunc(rr.Roles.Approvers, func(e string) bool { return strings.HasPrefix(e, prefix) })
	if !hasGroups {
		return false, nil
	}
	if rr.Groups == nil {
		return false, fmt.Errorf("role check for %s: %w (no %s member lookup is configured)", user, ErrGroupsUnresolved, prefix[:len(prefix)-1])
	}
	groups, err := rr.Groups(ctx, platform, id)
	if err != nil {
		return false, fmt.Errorf("role check for %s: reading its groups: %w", user, err)
	}
	return matches(rr.Roles.Approvers, Event{Platform: platform, User: id, UserGroups: groups}), nil
}
