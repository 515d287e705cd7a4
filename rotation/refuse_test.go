package rotation

import (
	"errors"
	"strings"
	"testing"

	"sepmbot/sepm"
)

// TestPlanRefusesUnknownManagerVersion: the path depends on the manager's major version
// (12.x starts at step 6), so a version that cannot be read is refused, not planned as
// 12.x.
func TestPlanRefusesUnknownManagerVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		ok      bool
		want    string // in the error
	}{
		{"14.3.25029.9000", true, ""},
		{"14.3.9000", true, ""}, // API_VERSION, when version is empty
		{"12.1.7454.7000", true, ""},
		{" 14.2.1031.0100 ", true, ""},
		{"", false, "cannot be parsed"},
		{"unknown", false, `"unknown" cannot be parsed`},
		{"14", false, "cannot be parsed"},
		{"v14.3", false, "cannot be parsed"},
		{"14.3-beta", false, "cannot be parsed"},
		{"14..3", false, "cannot be parsed"},
		{"14.3.\u202e1", false, `cannot be parsed`},
		{"13.0.1", false, "not one sepmbot knows"},
		{"15.0.0.1", false, "not one sepmbot knows"},
		{"11.0.6000.550", false, "not one sepmbot knows"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			inv := inventory(1, func(inv *Inventory) { inv.ManagerVersion = tc.version })
			p, err := MakePlan(inv, PlanOptions{})
			if tc.ok {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnknownManagerVersion) {
				t.Fatalf("err = %v, plan path %q with %d steps; want ErrUnknownManagerVersion", err, p.Path, len(p.Steps))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q lacks %q", err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\u202e\n") {
				t.Errorf("message %q carries control characters raw", err)
			}
		})
	}
}

// TestPlanRefusesMissingSecureCommunications: a target whose settings lack
// secure_communications is not "off"; the plan is refused and names the target.
func TestPlanRefusesMissingSecureCommunications(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []Target
		want    []string
		wantNot string
	}{
		{
			name:    "one target",
			targets: []Target{{GroupID: "SRV", LocationID: "L2", Path: `My Company\Servers`, Location: "Remote VPN", SecureUnknown: true}},
			want:    []string{`My Company\Servers / Remote VPN`, "secure_communications", "plan again"},
			wantNot: "My Company / Default",
		},
		{
			name:    "names are safe to show",
			targets: []Target{{GroupID: "X", LocationID: "L9", Path: "My Company\\Ev\x1b[2Jil\u202e", Location: "Off\nice", SecureUnknown: true}},
			want:    []string{`My Company\Ev[2Jil / Off ice`},
		},
		{
			name: "many targets are counted",
			targets: func() []Target {
				var ts []Target
				for i := range 12 {
					ts = append(ts, Target{GroupID: "G", LocationID: string(rune('a' + i)), Path: "My Company", Location: "Loc" + string(rune('A'+i)), SecureUnknown: true})
				}
				return ts
			}(),
			want: []string{"My Company / LocA", "and 2 more"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := inventory(1, func(inv *Inventory) { inv.Targets = append(inv.Targets, tc.targets...) })
			_, err := MakePlan(inv, PlanOptions{})
			if !errors.Is(err, ErrSecureUnknown) {
				t.Fatalf("err = %v, want ErrSecureUnknown", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			if tc.wantNot != "" && strings.Contains(err.Error(), tc.wantNot) {
				t.Errorf("message %q names a target whose setting is known", err)
			}
		})
	}
}

// TestTargetOfMissingSecure: settings without the field (no general settings, no
// security settings, a null value) read as unknown, never as off; present values are
// known either way.
func TestTargetOfMissingSecure(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		name        string
		cfg         sepm.Configuration
		wantSecure  bool
		wantUnknown bool
	}{
		{"no general settings", sepm.Configuration{}, false, true},
		{"no security settings", sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{}}, false, true},
		{"null field", sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{SecuritySettings: &sepm.SecuritySettings{}}}, false, true},
		{"on", sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{SecuritySettings: &sepm.SecuritySettings{SecureCommunications: &on}}}, true, false},
		{"off", sepm.Configuration{GeneralSettings: &sepm.GeneralSettings{SecuritySettings: &sepm.SecuritySettings{SecureCommunications: &off}}}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := targetOf(sepm.Group{ID: "G"}, sepm.Location{ID: "L", Name: "Default"}, sepm.Settings{Configuration: tc.cfg})
			if tg.Secure != tc.wantSecure || tg.SecureUnknown != tc.wantUnknown {
				t.Errorf("secure=%v unknown=%v, want %v %v", tg.Secure, tg.SecureUnknown, tc.wantSecure, tc.wantUnknown)
			}
		})
	}
}
