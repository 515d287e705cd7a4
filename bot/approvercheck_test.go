package bot

import (
	"context"
	"testing"
)

func TestApproverCheck(t *testing.T) {
	direct := ApproverCheck{Roles: Roles{Approvers: []string{"console:bob", "slack:U1"}}}
	for user, want := range map[string]bool{"console:bob": true, "slack:U1": true, "console:carol": false, "slack:U2": false} {
		if got, err := direct.IsApprover(context.Background(), user); err != nil || got != want {
			t.Errorf("IsApprover(%s) = %v, %v; want %v", user, got, err, want)
		}
	}
	groups := ApproverCheck{Roles: Roles{Approvers: []string{"slack-group:S1"}}}
	if ok, _ := groups.IsApprover(context.Background(), "slack:U9"); !ok {
		t.Errorf("a user who may hold the role through a group is refused before groups are resolved")
	}
}
