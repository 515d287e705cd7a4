package bot

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sepmbot/approvals"
	"sepmbot/rotation"
)

// optsEngine records the plan options rotate hands the engine.
type optsEngine struct {
	fakeEngine
	opts []rotation.PlanOptions
}

func (o *optsEngine) Rotate(ctx context.Context, user, home string, opts rotation.PlanOptions) (rotation.Rotation, error) {
	o.opts = append(o.opts, opts)
	return o.fakeEngine.Rotate(ctx, user, home, opts)
}

// TestRotateRefusesTooFewOtherApprovers: rotate is refused, before the engine is
// called, when fewer approvers than --approvals are configured besides the requester
// (an operator who is also an approver cannot count themself).
func TestRotateRefusesTooFewOtherApprovers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		approvers []string
		approvals int
		requester string
		ok        bool
		single    bool
	}{
		{name: "two others", approvers: []string{"console:bob,console:carol"}, approvals: 2, requester: "alice", ok: true},
		{name: "default is two", approvers: []string{"console:bob,console:carol"}, approvals: 0, requester: "alice", ok: true},
		{name: "requester is one of two", approvers: []string{"console:alice,console:bob"}, approvals: 2, requester: "alice"},
		{name: "requester is one of three", approvers: []string{"console:alice,console:bob,console:carol"}, approvals: 2, requester: "alice", ok: true},
		{name: "only the requester, single approver", approvers: []string{"console:alice"}, approvals: 1, requester: "alice"},
		{name: "one other, single approver", approvers: []string{"console:bob"}, approvals: 1, requester: "alice", ok: true, single: true},
		{name: "a group counts as one", approvers: []string{"console:alice", "slack-group:S0614TZR7"}, approvals: 2, requester: "alice"},
		{name: "three needed, two others", approvers: []string{"console:alice,console:bob,console:carol"}, approvals: 3, requester: "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roles, err := ParseRoles([]string{"console:alice"}, tc.approvers, nil)
			if err != nil {
				t.Fatal(err)
			}
			fe := &optsEngine{}
			r := &Router{Engine: fe, Deliveries: &memDeliveries{}, Roles: roles, Approvals: tc.approvals, Sites: []string{"site-a"}}
			got := r.Handle(context.Background(), cmd(tc.requester, "/sepm rotate site-a", "d1"))
			if !tc.ok {
				if !strings.HasPrefix(got.Text, "rotate refused:") || !strings.Contains(got.Text, "nobody could approve") || !strings.Contains(got.Text, "console:"+tc.requester) {
					t.Errorf("answer %q, want a refusal naming the requester", got.Text)
				}
				if len(fe.calls) != 0 {
					t.Errorf("engine called: %v", fe.calls)
				}
				return
			}
			if !strings.Contains(got.Text, "R1 started") || len(fe.opts) != 1 {
				t.Fatalf("answer %q, calls %v", got.Text, fe.calls)
			}
			if fe.opts[0].SingleApprover != tc.single {
				t.Errorf("SingleApprover = %v, want %v", fe.opts[0].SingleApprover, tc.single)
			}
		})
	}
}

// TestRoleResolver: the engine's role check at the dangerous step.
func TestRoleResolver(t *testing.T) {
	roles, err := ParseRoles([]string{"console:alice"}, []string{"console:bob", "slack:U02BOB", "slack-group:S0614TZR7"}, []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	lookups := 0
	groups := func(_ context.Context, platform, id string) ([]string, error) {
		lookups++
		switch id {
		case "U0CAROL":
			return []string{"S0614TZR7"}, nil
		case "U0BROKEN":
			return nil, errors.New("slack: 429")
		}
		return []string{"S0OTHER"}, nil
	}
	for _, tc := range []struct {
		name    string
		rr      RoleResolver
		user    string
		want    bool
		wantErr error // nil: no error; errAnyErr: some error
	}{
		{"named directly", roles.Resolver(), "console:bob", true, nil},
		{"named on slack", roles.Resolver(), "slack:U02BOB", true, nil},
		{"operator is not an approver", roles.Resolver(), "console:alice", false, nil},
		{"a viewer ('*') is not an approver", roles.Resolver(), "console:vera", false, nil},
		{"same id, other platform", roles.Resolver(), "discord:U02BOB", false, nil},
		{"display name is no id", roles.Resolver(), "console:@bob", false, nil},
		{"group member, no lookup", roles.Resolver(), "slack:U0CAROL", false, ErrGroupsUnresolved},
		{"group member", RoleResolver{Roles: roles, Groups: groups}, "slack:U0CAROL", true, nil},
		{"not in the group", RoleResolver{Roles: roles, Groups: groups}, "slack:U0DAVE", false, nil},
		{"lookup fails", RoleResolver{Roles: roles, Groups: groups}, "slack:U0BROKEN", false, errAnyErr},
		{"no platform", roles.Resolver(), "bob", false, errAnyErr},
		{"removed from the configuration", Roles{Approvers: []string{"console:carol"}}.Resolver(), "console:bob", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rr.IsApprover(context.Background(), tc.user)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantErr == errAnyErr && err == nil, tc.wantErr != nil && tc.wantErr != errAnyErr && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("IsApprover(%s) = %v, want %v", tc.user, got, tc.want)
			}
		})
	}
	if lookups != 3 {
		t.Errorf("group lookups = %d, want 3 (only for users not named directly)", lookups)
	}
}

var errAnyErr = errors.New("any error")

// engineRoles is the resolver shape the engine is given (rotation.Config).
type engineRoles interface {
	IsApprover(ctx context.Context, user string) (bool, error)
}

var _ engineRoles = RoleResolver{}

// TestCardSaysSingleApprover: with --approvals 1 --allow-single-approver the card and
// the approval request say so; with the default two they do not.
func TestCardSaysSingleApprover(t *testing.T) {
	p := cardPlan(t, false, cardTargets(2, 0))
	for _, tc := range []struct {
		name     string
		single   bool
		required int
		want     bool
	}{
		{"default, before the request", false, 0, false},
		{"default, request of 2", false, 2, false},
		{"single, before the request", true, 0, true},
		{"single, request of 1", true, 1, true},
		{"request of 1 whatever the options say", false, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cardRotation(p)
			r.Options.SingleApprover = tc.single
			v := rotation.View{Rotation: r}
			if tc.required > 0 {
				v.Approval = &approvals.Request{ID: "A1", Requester: "console:alice", Required: tc.required, State: approvals.StatePending, Expires: cardT0.Add(3600e9)}
			}
			for name, text := range map[string]string{"card": RenderCard(v, cardT0).Text, "approval request": RenderApprovalRequest(v).Text} {
				if got := strings.Contains(text, "--allow-single-approver"); got != tc.want {
					t.Errorf("%s mentions --allow-single-approver: %v, want %v\n%s", name, got, tc.want, text)
				}
			}
		})
	}
}
