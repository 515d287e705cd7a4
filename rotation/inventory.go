package rotation

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"sepmbot/sepm"
)

// SEPM is what the rotation needs from the SEPM REST client; *sepm.Client implements it.
type SEPM interface {
	Version(ctx context.Context) (sepm.Version, error)
	AdminServers(ctx context.Context) ([]sepm.Server, error)
	Groups(ctx context.Context) ([]sepm.Group, error)
	Locations(ctx context.Context, groupID string) ([]sepm.Location, error)
	LocationSettings(ctx context.Context, groupID, locationID string) (sepm.Settings, error)
	PatchLocationSettings(ctx context.Context, groupID, locationID string, patch sepm.Configuration) (sepm.Settings, error)
	EachComputerPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.Computer) error) error
	// EachComputerMarkPage reads what EachComputerPage reads, as marks valid only
	// during fn (a wait's reads: sepm.Client decodes them without allocating).
	EachComputerMarkPage(ctx context.Context, q sepm.ComputerQuery, fn func(page []sepm.ComputerMark) error) error
	ClientVersions(ctx context.Context) (sepm.ClientVersionResponse, error)
	OnlineStatus(ctx context.Context) (sepm.OnlineStatusResponse, error)
	IsReplicated(ctx context.Context) (bool, error)
	Trust(fps ...string) error
}

// ReadInventory reads what the planner needs from SEPM: version, servers, groups,
// the settings of every location of every non-inheriting group, client versions and
// online counts, and which servers clients check in to (one computers sweep).
func ReadInventory(ctx context.Context, api SEPM, site string, servers []ServerRef) (Inventory, error) {
	inv := Inventory{Site: site, Servers: servers, ClientVersions: map[string]int{}, ServersSeen: map[string]int{}}
	v, err := api.Version(ctx)
	if err != nil {
		return inv, fmt.Errorf("inventory: version: %w", err)
	}
	inv.ManagerVersion = v.Version
	if inv.ManagerVersion == "" {
		inv.ManagerVersion = v.APIVersion
	}
	srv, err := api.AdminServers(ctx)
	if err != nil {
		return inv, fmt.Errorf("inventory: servers: %w", err)
	}
	inv.ServerCount = len(srv)
	groups, err := api.Groups(ctx)
	if err != nil {
		return inv, fmt.Errorf("inventory: groups: %w", err)
	}
	for _, g := range groups {
		inv.Groups = append(inv.Groups, GroupInfo{ID: g.ID, Path: g.Path(), Inherits: g.PolicyInheritanceEnabled, Serial: g.PolicySerialNumber})
	}
	targets, err := readTargets(ctx, api, groups)
	if err != nil {
		return inv, err
	}
	inv.Targets = targets
	cv, err := api.ClientVersions(ctx)
	if err != nil {
		return inv, fmt.Errorf("inventory: client versions: %w", err)
	}
	for _, row := range cv.ClientVersionList {
		inv.ClientVersions[row.Version] += row.ClientsCount
		inv.ClientsTotal += row.ClientsCount
		if Is142(row.Version) {
			inv.Clients142 += row.ClientsCount
		}
	}
	on, err := api.OnlineStatus(ctx)
	if err != nil {
		return inv, fmt.Errorf("inventory: online status: %w", err)
	}
	for _, row := range on.ClientCountStatsList {
		if strings.EqualFold(row.Status, "Online") {
			inv.ClientsOnline += row.ClientsCount
		}
	}
	err = api.EachComputerPage(ctx, sepm.ComputerQuery{PageSize: 1000}, func(page []sepm.Computer) error {
		for _, c := range page {
			if c.LastServerName != "" {
				inv.ServersSeen[c.LastServerName]++
			}
		}
		return nil
	})
	if err != nil {
		return inv, fmt.Errorf("inventory: computers: %w", err)
	}
	inv.Replicated, err = api.IsReplicated(ctx)
	if err != nil {
		return inv, fmt.Errorf("inventory: replication: %w", err)
	}
	return inv, nil
}

// readTargets lists every location of every group that does not inherit its policy
// (the root always counts), with its current communication settings.
func readTargets(ctx context.Context, api SEPM, groups []sepm.Group) ([]Target, error) {
	var out []Target
	for _, g := range groups {
		if g.PolicyInheritanceEnabled {
			continue
		}
		locs, err := api.Locations(ctx, g.ID)
		if err != nil {
			return nil, fmt.Errorf("inventory: locations of %s: %w", g.Path(), err)
		}
		for _, l := range locs {
			s, err := api.LocationSettings(ctx, g.ID, l.ID)
			if err != nil {
				return nil, fmt.Errorf("inventory: settings of %s / %s: %w", g.Path(), l.Name, err)
			}
			out = append(out, targetOf(g, l, s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

func targetOf(g sepm.Group, l sepm.Location, s sepm.Settings) Target {
	t := Target{GroupID: g.ID, LocationID: l.ID, Path: g.Path(), Location: l.Name}
	if cs := s.Configuration.CommunicationSettings; cs != nil {
		t.Mode = cs.Mode
		if cs.SemServer != nil {
			t.MSL = cs.SemServer.Name
		}
		t.HeartbeatSeconds = int(heartbeatOf(cs))
	}
	t.Secure, t.SecureUnknown = secureOf(s), !secureKnown(s)
	return t
}

// heartbeatOf is the interval a client of these settings checks in at: the pull
// heartbeat in pull mode; in push mode clients still upload on their upload heartbeat,
// so the longest of those counts.
func heartbeatOf(cs *sepm.CommunicationSettings) int64 {
	var hb int64
	for _, p := range []*int64{cs.PullModeHeartbeatFreqInSeconds, cs.UploadOpStateHeartbeatFreqInSec} {
		if p != nil && *p > hb {
			hb = *p
		}
	}
	return hb
}

// secureKnown reports whether the settings carry secure_communications at all; when
// they do not, secureOf's false means "unknown", never "off".
func secureKnown(s sepm.Settings) bool {
	gs := s.Configuration.GeneralSettings
	return gs != nil && gs.SecuritySettings != nil && gs.SecuritySettings.SecureCommunications != nil
}

// secureOf is the secure_communications setting, false when it is missing (see
// secureKnown).
func secureOf(s sepm.Settings) bool {
	gs := s.Configuration.GeneralSettings
	if gs == nil || gs.SecuritySettings == nil || gs.SecuritySettings.SecureCommunications == nil {
		return false
	}
	return *gs.SecuritySettings.SecureCommunications
}

func mslOf(s sepm.Settings) string {
	if cs := s.Configuration.CommunicationSettings; cs != nil && cs.SemServer != nil {
		return cs.SemServer.Name
	}
	return ""
}

// HTTPCopyName is the name sepmbot asks the operator to give the HTTP copy of an MSL.
func HTTPCopyName(msl string, port int) string {
	return fmt.Sprintf("%s (HTTP %d)", msl, port)
}
