package sim

import (
	"sort"
	"strings"

	"sepmbot/sepm"
)

// This file renders the model as the wire types of package sepm.

func (m *model) domain() sepm.DomainSummary {
	return sepm.DomainSummary{ID: m.domainID, Name: domainName}
}

func (m *model) groupViewLocked(g *group) sepm.Group {
	return sepm.Group{
		ID:                        g.id,
		Name:                      g.name,
		Description:               g.desc,
		FullPathName:              g.path,
		NumberOfPhysicalComputers: g.clients,
		Created:                   g.created,
		LastModified:              g.modified,
		PolicySerialNumber:        g.serial,
		PolicyDate:                g.serialTime.UnixMilli(),
		DefaultLocationID:         g.locs[0].id,
		PolicyInheritanceEnabled:  g.inherits,
		Domain:                    m.domain(),
	}
}

// pageOf slices total items into the page pageIndex (from 1) of size pageSize and
// fills the envelope; fill renders the items [lo, hi).
func pageOf[T any](total, pageIndex, pageSize int, fill func(lo, hi int) []T) sepm.Page[T] {
	lo := total // a pageIndex past the end (however large: no overflow) gets an empty page
	if pageIndex-1 <= total/pageSize {
		lo = (pageIndex - 1) * pageSize
	}
	lo = min(lo, total)
	hi := min(lo+pageSize, total)
	p := sepm.Page[T]{
		Content:       fill(lo, hi),
		FirstPage:     pageIndex == 1,
		Number:        pageIndex - 1,
		Size:          pageSize,
		TotalElements: int64(total),
		TotalPages:    (total + pageSize - 1) / pageSize,
	}
	if p.Content == nil {
		p.Content = []T{}
	}
	p.NumberOfElements = len(p.Content)
	p.LastPage = pageIndex >= p.TotalPages
	return p
}

func (m *model) groupsPage(pageIndex, pageSize int) sepm.Page[sepm.Group] {
	m.mu.Lock()
	defer m.mu.Unlock()
	return pageOf(len(m.groups), pageIndex, pageSize, func(lo, hi int) []sepm.Group {
		out := make([]sepm.Group, 0, hi-lo)
		for _, g := range m.groups[lo:hi] {
			out = append(out, m.groupViewLocked(g))
		}
		return out
	})
}

func (m *model) groupView(id string) (sepm.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(id)
	if err != nil {
		return sepm.Group{}, err
	}
	return m.groupViewLocked(g), nil
}

// locations renders GET groups/{g}/locations: "Name:/sepm/api/v1/groups/G/locations/L"
// with hasName, the bare location ids without.
func (m *model) locations(groupID string, hasName bool) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(groupID)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(g.locs))
	for _, l := range g.locs {
		if hasName {
			out = append(out, l.name+":/sepm/api/v1/groups/"+g.id+"/locations/"+l.id)
		} else {
			out = append(out, l.id)
		}
	}
	return out, nil
}

func settingsView(s settings) sepm.Settings {
	i64 := func(v int64) *int64 { return &v }
	secure := s.secure
	return sepm.Settings{
		Configuration: sepm.Configuration{
			CommunicationSettings: &sepm.CommunicationSettings{
				Mode:                             s.mode,
				PullModeHeartbeatFreqInSeconds:   i64(s.pull),
				UploadOpStateHeartbeatFreqInSec:  i64(s.opState),
				UploadLogHeartbeatFreqInSeconds:  i64(s.upLog),
				UploadCmdStateHeartbeatFreqInSec: i64(s.cmd),
				SemServer:                        &sepm.ServerListSummary{Name: s.msl},
			},
			GeneralSettings: &sepm.GeneralSettings{
				SecuritySettings: &sepm.SecuritySettings{SecureCommunications: &secure, StoppedMode: s.stoppedMode},
			},
		},
		LockedOptions: map[string]any{},
	}
}

// locationSettings renders the settings of a group's location; an inheriting group
// shows the settings it inherits.
func (m *model) locationSettings(groupID, locID string) (sepm.Settings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(groupID)
	if err != nil {
		return sepm.Settings{}, err
	}
	l, err := g.locIndex(locID)
	if err != nil {
		return sepm.Settings{}, err
	}
	return settingsView(m.groups[g.source].settings[l]), nil
}

// patchSettings merges the fields present in cfg into a location's settings. Any
// accepted field gives the group, and every group inheriting from it, a new policy
// serial. Nothing is changed when any field is invalid.
func (m *model) patchSettings(groupID, locID string, cfg sepm.Configuration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(groupID)
	if err != nil {
		return err
	}
	l, err := g.locIndex(locID)
	if err != nil {
		return err
	}
	if g.inherits {
		return badRequest("group inherits its policy from its parent")
	}
	s := g.settings[l]
	touched := false
	hb := func(dst *int64, v *int64, name string) error {
		if v == nil {
			return nil
		}
		if *v < 1 || *v > 86400 {
			return badRequest("%s must be between 1 and 86400", name)
		}
		*dst = *v
		touched = true
		return nil
	}
	if cs := cfg.CommunicationSettings; cs != nil {
		if cs.Mode != "" {
			mode := strings.ToUpper(cs.Mode)
			if mode != "PULL" && mode != "PUSH" {
				return badRequest("mode must be PULL or PUSH")
			}
			s.mode = mode
			touched = true
		}
		for _, f := range []struct {
			dst  *int64
			v    *int64
			name string
		}{
			{&s.pull, cs.PullModeHeartbeatFreqInSeconds, "pull_mode_heartbeat_freq_in_seconds"},
			{&s.opState, cs.UploadOpStateHeartbeatFreqInSec, "upload_op_state_heartbeat_freq_in_seconds"},
			{&s.upLog, cs.UploadLogHeartbeatFreqInSeconds, "upload_log_heartbeat_freq_in_seconds"},
			{&s.cmd, cs.UploadCmdStateHeartbeatFreqInSec, "upload_cmd_state_heartbeat_freq_in_seconds"},
		} {
			if err := hb(f.dst, f.v, f.name); err != nil {
				return err
			}
		}
		if cs.SemServer != nil {
			if _, ok := m.msls[cs.SemServer.Name]; !ok {
				return badRequest("management server list %q does not exist", cs.SemServer.Name)
			}
			s.msl = cs.SemServer.Name
			touched = true
		}
	}
	if gs := cfg.GeneralSettings; gs != nil && gs.SecuritySettings != nil {
		ss := gs.SecuritySettings
		if ss.SecureCommunications != nil {
			s.secure = *ss.SecureCommunications
			touched = true
		}
		if ss.StoppedMode != "" {
			switch ss.StoppedMode {
			case "ALLOW", "BLOCK", "ALLOW_STARTUP_ONLY":
			default:
				return badRequest("stopped_mode must be ALLOW, BLOCK or ALLOW_STARTUP_ONLY")
			}
			s.stoppedMode = ss.StoppedMode
			touched = true
		}
	}
	if !touched {
		return nil
	}
	m.countPatchLocked(g, l, cfg, g.settings[l], s)
	g.settings[l] = s
	m.changedLocked(g, m.now())
	m.log.Info("sim: settings changed", "group", g.path, "location", g.locs[l].name,
		"mode", s.mode, "heartbeat", s.heartbeat().String(), "msl", s.msl, "secure", s.secure)
	return nil
}

func (m *model) computerViewLocked(c *client) sepm.Computer {
	g := m.groups[c.group]
	online := 0
	if c.checkingIn() {
		online = 1
	}
	return sepm.Computer{
		ComputerName:        c.name,
		UniqueID:            c.uid,
		HardwareKey:         c.hwKey,
		AgentVersion:        m.builds[c.build].version,
		OnlineStatus:        online,
		LastUpdateTime:      c.lastUpdate,
		ProfileSerialNo:     c.serial,
		LastServerName:      m.servers[c.lastServer].name,
		LastSiteName:        siteName,
		LastConnectedIPAddr: c.ip,
		OperatingSystem:     osNames[c.os],
		// Like real SEPM: the full path in name, fullPathName left empty.
		Group: sepm.GroupSummary{ID: g.id, Name: g.path, FullPathName: "", Domain: m.domain()},
	}
}

// computersPage renders a page of computers, optionally only those of one group and
// only those that checked in after lastUpdate (epoch ms; 0 = all).
func (m *model) computersPage(pageIndex, pageSize int, lastUpdate int64, groupID string) (sepm.Page[sepm.Computer], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gi := int32(-1)
	if groupID != "" {
		g, err := m.groupLocked(groupID)
		if err != nil {
			return sepm.Page[sepm.Computer]{}, err
		}
		gi = int32(g.idx)
	}
	if gi < 0 && lastUpdate <= 0 {
		return pageOf(len(m.clients), pageIndex, pageSize, func(lo, hi int) []sepm.Computer {
			out := make([]sepm.Computer, 0, hi-lo)
			for i := lo; i < hi; i++ {
				out = append(out, m.computerViewLocked(&m.clients[i]))
			}
			return out
		}), nil
	}
	var match []int32
	for i := range m.clients {
		c := &m.clients[i]
		if (gi < 0 || c.group == gi) && c.lastUpdate > lastUpdate {
			match = append(match, int32(i))
		}
	}
	return pageOf(len(match), pageIndex, pageSize, func(lo, hi int) []sepm.Computer {
		out := make([]sepm.Computer, 0, hi-lo)
		for _, i := range match[lo:hi] {
			out = append(out, m.computerViewLocked(&m.clients[i]))
		}
		return out
	}), nil
}

func (m *model) clientVersions() sepm.ClientVersionResponse {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := make([]int, len(m.builds))
	for i := range m.clients {
		counts[m.clients[i].build]++
	}
	out := sepm.ClientVersionResponse{ClientVersionList: []sepm.ClientVersionStat{}, LastUpdated: m.now().UnixMilli()}
	for i, b := range m.builds {
		if counts[i] > 0 {
			out.ClientVersionList = append(out.ClientVersionList, sepm.ClientVersionStat{Version: b.version, FormattedVersion: b.formatted, ClientsCount: counts[i]})
		}
	}
	sort.Slice(out.ClientVersionList, func(i, j int) bool {
		return out.ClientVersionList[i].Version > out.ClientVersionList[j].Version
	})
	return out
}

func (m *model) onlineStatus() sepm.OnlineStatusResponse {
	m.mu.Lock()
	defer m.mu.Unlock()
	on := 0
	for i := range m.clients {
		if m.clients[i].checkingIn() {
			on++
		}
	}
	return sepm.OnlineStatusResponse{
		ClientCountStatsList: []sepm.OnlineStat{{Status: "Online", ClientsCount: on}, {Status: "Offline", ClientsCount: len(m.clients) - on}},
		LastUpdated:          m.now().UnixMilli(),
	}
}

func (m *model) adminServers() []sepm.Server {
	out := make([]sepm.Server, 0, len(m.servers))
	for _, s := range m.servers {
		out = append(out, sepm.Server{ID: s.id})
	}
	return out
}

func (m *model) replicationStatus() sepm.ReplicationStatusResponse {
	return sepm.ReplicationStatusResponse{ReplicationStatus: sepm.ReplicationStatus{
		ID: m.siteID, SiteName: siteName, SiteLocation: "NA",
		ReplicationPartnerStatusList: []sepm.ReplicationPartnerStatus{},
	}}
}

// apiVersion renders GET version for a manager version "A.B.C.D" as API_VERSION "A.B.D".
func (m *model) apiVersion() sepm.Version {
	v := m.opts.ManagerVersion
	f := strings.Split(v, ".")
	api := v
	if len(f) == 4 {
		api = f[0] + "." + f[1] + "." + f[3]
	}
	return sepm.Version{APISequence: "240604011", APIVersion: api, Version: v}
}
