package rotation

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func inventory(servers int, mutate func(*Inventory)) Inventory {
	inv := Inventory{
		Site: "site-a", ManagerVersion: "14.3.25029.9000", ServerCount: servers,
		Groups: []GroupInfo{
			{ID: "ROOT", Path: "My Company"},
			{ID: "WS", Path: `My Company\Workstations`, Inherits: true},
		},
		Targets: []Target{
			{GroupID: "ROOT", LocationID: "L1", Path: "My Company", Location: "Default", MSL: "Default Management Server List", Secure: true, HeartbeatSeconds: 300, Mode: "PUSH"},
		},
		ClientsTotal: 100, ClientsOnline: 95,
		ClientVersions: map[string]int{"14.3.9816.7000": 100},
		ServersSeen:    map[string]int{},
	}
	for i := 1; i <= servers; i++ {
		name := "sepm-0" + string(rune('0'+i))
		inv.Servers = append(inv.Servers, ServerRef{Name: name, ClientAddr: "127.0.0.1:1"})
		inv.ServersSeen[name] = 100 / servers
	}
	if mutate != nil {
		mutate(&inv)
	}
	return inv
}

func stepIDs(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.ID)
	}
	return out
}

func TestPlanner(t *testing.T) {
	tests := []struct {
		name       string
		inv        Inventory
		opts       PlanOptions
		wantPath   string
		wantReason string
		wantSteps  []string
		wantErr    error
		check      func(t *testing.T, p Plan)
	}{
		{
			name: "one server", inv: inventory(1, nil), wantPath: PathSingle, wantReason: "one management server",
			wantSteps: []string{"http-msl", "assign-http", "approval", "disable-secure", "wait-disable", "cert-sepm-01", "wait-cert", "enable-secure", "wait-enable", "restore-msl", "wait-restore", "report"},
		},
		{
			name: "one server, multi asked for, refused", inv: inventory(1, nil), opts: PlanOptions{Mode: PathMulti},
			wantPath: PathSingle, wantReason: "refused",
		},
		{
			name: "two servers with load balancing observed", inv: inventory(2, nil), opts: PlanOptions{Straggler: 10 * time.Second, StragglerSet: true},
			wantPath: PathMulti, wantReason: "2 different servers",
			wantSteps: []string{"approval", "cert-sepm-01", "wait-sepm-01", "straggler", "cert-sepm-02", "wait-sepm-02", "report"},
			check: func(t *testing.T, p Plan) {
				if p.StragglerSeconds != 10 {
					t.Errorf("straggler = %ds, want 10", p.StragglerSeconds)
				}
				for _, s := range p.Steps {
					if s.Action == ActDisableSecure {
						t.Errorf("multi path must not disable secure communication: %+v", s)
					}
				}
			},
		},
		{
			name: "two servers with failover, default straggler window", inv: inventory(2, func(inv *Inventory) { inv.ServersSeen = map[string]int{"sepm-01": 100} }),
			opts: PlanOptions{Mode: PathMulti}, wantPath: PathMulti, wantReason: "--mode multi",
			check: func(t *testing.T, p Plan) {
				if p.StragglerSeconds != int64(DefaultStraggler/time.Second) {
					t.Errorf("straggler = %ds, want 90 days", p.StragglerSeconds)
				}
			},
		},
		{
			name: "two servers, failover not evident", inv: inventory(2, func(inv *Inventory) { inv.ServersSeen = map[string]int{"sepm-01": 100} }),
			wantPath: PathSingle, wantReason: "not evident",
		},
		{
			name: "two servers with 14.2.x clients", inv: inventory(2, func(inv *Inventory) { inv.Clients142 = 7 }), opts: PlanOptions{Mode: PathMulti},
			wantPath: PathSingle, wantReason: "7 clients run 14.2.x",
			check: func(t *testing.T, p Plan) {
				if !slices.Contains(stepIDs(p), "cert-sepm-02") || !slices.Contains(stepIDs(p), "cert-sepm-01") {
					t.Errorf("single path on a two-server site must update both servers: %v", stepIDs(p))
				}
			},
		},
		{
			name: "12.x manager starts at step 6", inv: inventory(1, func(inv *Inventory) { inv.ManagerVersion = "12.1.7454.7000" }),
			wantPath:  PathSingle,
			wantSteps: []string{"approval", "disable-secure", "wait-disable", "cert-sepm-01", "wait-cert", "enable-secure", "wait-enable", "report"},
		},
		{
			name: "non-inheriting groups and location-specific settings are listed",
			inv: inventory(1, func(inv *Inventory) {
				inv.Groups = append(inv.Groups, GroupInfo{ID: "SRV", Path: `My Company\Servers`})
				inv.Targets = append(inv.Targets,
					Target{GroupID: "SRV", LocationID: "L2", Path: `My Company\Servers`, Location: "Default", MSL: "Servers MSL", Secure: true, HeartbeatSeconds: 600},
					Target{GroupID: "SRV", LocationID: "L3", Path: `My Company\Servers`, Location: "Remote VPN", MSL: "Servers MSL", Secure: true, HeartbeatSeconds: 120},
				)
			}),
			wantPath: PathSingle,
			check: func(t *testing.T, p Plan) {
				if len(p.GroupsToChange) != 3 {
					t.Fatalf("groups_to_change = %d, want root + 2 locations of the non-inheriting group", len(p.GroupsToChange))
				}
				if p.HeartbeatSeconds != 600 || p.WaitSeconds != 1800 {
					t.Errorf("heartbeat %d wait %d, want the longest (600) x 3", p.HeartbeatSeconds, p.WaitSeconds)
				}
				locs := map[string]bool{}
				for _, g := range p.GroupsToChange {
					locs[g.Path+"/"+g.Location] = true
				}
				if !locs[`My Company\Servers/Remote VPN`] {
					t.Errorf("location with its own settings missing: %v", locs)
				}
			},
		},
		{
			name: "min-wait floor", inv: inventory(1, nil), opts: PlanOptions{MinWait: 24 * time.Hour}, wantPath: PathSingle,
			check: func(t *testing.T, p Plan) {
				if p.WaitSeconds != 86400 {
					t.Errorf("wait = %d, want 86400", p.WaitSeconds)
				}
				if !strings.Contains(strings.Join(p.Notes, " "), "24h") {
					t.Errorf("notes must mention the KB's 24h: %v", p.Notes)
				}
			},
		},
		{name: "damaged but valid", inv: inventory(1, nil), opts: PlanOptions{DamagedButValid: true}, wantErr: ErrDisasterRecovery},
		{name: "bad mode", inv: inventory(1, nil), opts: PlanOptions{Mode: "both"}, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := MakePlan(tc.inv, tc.opts)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Path != tc.wantPath {
				t.Errorf("path = %s, want %s (reason %q)", p.Path, tc.wantPath, p.Reason)
			}
			if tc.wantReason != "" && !strings.Contains(p.Reason, tc.wantReason) {
				t.Errorf("reason %q does not say %q", p.Reason, tc.wantReason)
			}
			if tc.wantSteps != nil && !slices.Equal(stepIDs(p), tc.wantSteps) {
				t.Errorf("steps = %v\nwant    %v", stepIDs(p), tc.wantSteps)
			}
			ids := map[string]bool{}
			for _, s := range p.Steps {
				if ids[s.ID] {
					t.Errorf("duplicate step id %s", s.ID)
				}
				ids[s.ID] = true
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestStragglerDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		now        time.Time
		last       time.Time
		reminded   bool
		wantRemind bool
		wantReport bool
	}{
		{now: start.Add(time.Hour)},
		{now: start.Add(24 * time.Hour), wantReport: true},
		{now: start.Add(25 * time.Hour), last: start.Add(24 * time.Hour)},
		{now: start.Add(30 * 24 * time.Hour), last: start.Add(29 * 24 * time.Hour), wantRemind: true, wantReport: true},
		{now: start.Add(31 * 24 * time.Hour), last: start.Add(30*24*time.Hour + time.Hour), reminded: true},
	}
	for i, tc := range tests {
		r, p := stragglerDue(tc.now, start, tc.last, tc.reminded)
		if r != tc.wantRemind || p != tc.wantReport {
			t.Errorf("case %d: remind=%v report=%v, want %v %v", i, r, p, tc.wantRemind, tc.wantReport)
		}
	}
}

func TestPlanLists(t *testing.T) {
	p := Plan{GroupsToChange: []Target{{MSL: "Site B MSL"}, {MSL: "Default MSL"}, {MSL: ""}, {MSL: "Site B MSL"}}}
	if got := p.Lists(); !slices.Equal(got, []string{"Default MSL", "Site B MSL"}) {
		t.Fatalf("Lists() = %q: want each list once, sorted, none empty", got)
	}
}
