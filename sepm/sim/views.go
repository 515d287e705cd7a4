package sim

import (
	"sort"
	"strings"

	"sepmbot/sepm"
)

// This file renders the model in the wire types of wire_gen.go (every field of
// Broadcom's schema).

func (m *model) domain() wDomainSummary {
	return wDomainSummary{Id: m.domainID, Name: domainName}
}

func (m *model) groupViewLocked(g *group) wGroup {
	v := newWGroup()
	v.Id = g.id
	v.Name = g.name
	v.Description = g.desc
	v.FullPathName = g.path
	v.NumberOfPhysicalComputers = g.clients
	v.CreatedBy = m.adminID
	v.Created = g.created
	v.LastModified = g.modified
	v.PolicySerialNumber = g.serial
	v.PolicyDate = g.serialTime.UnixMilli()
	v.CustomIpsNumber = ""
	v.DefaultLocationId = g.locs[0].id
	v.PolicyInheritanceEnabled = g.inherits
	v.Domain = m.domain()
	return v
}

// wPage is SEPM's paging envelope (schemas groups_Page and PageObject), every field.
// Number is zero-based although pageIndex starts at 1.
type wPage[T any] struct {
	Content          []T            `json:"content"`
	FirstPage        bool           `json:"firstPage"`
	LastPage         bool           `json:"lastPage"`
	Number           int            `json:"number"`
	NumberOfElements int            `json:"numberOfElements"`
	Size             int            `json:"size"`
	Sort             map[string]any `json:"sort"`
	TotalElements    int64          `json:"totalElements"`
	TotalPages       int            `json:"totalPages"`
}

// pageOf slices total items into the page pageIndex (from 1) of size pageSize and
// fills the envelope; fill renders the items [lo, hi).
func pageOf[T any](total, pageIndex, pageSize int, fill func(lo, hi int) []T) wPage[T] {
	lo := total // a pageIndex past the end (however large: no overflow) gets an empty page
	if pageIndex-1 <= total/pageSize {
		lo = (pageIndex - 1) * pageSize
	}
	lo = min(lo, total)
	hi := min(lo+pageSize, total)
	p := wPage[T]{
		Content:       fill(lo, hi),
		FirstPage:     pageIndex == 1,
		Number:        pageIndex - 1,
		Size:          pageSize,
		Sort:          map[string]any{},
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

func (m *model) groupView(id string) (wGroup, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(id)
	if err != nil {
		return wGroup{}, err
	}
	return m.groupViewLocked(g), nil
}

// locationPolicies checks a group's location and reports whether the group
// inherits its policies.
func (m *model) locationPolicies(groupID, locID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(groupID)
	if err != nil {
		return false, err
	}
	if _, err := g.locIndex(locID); err != nil {
		return false, err
	}
	return g.inherits, nil
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

// wSettings is the reply of GET groups/{g}/locations/{l}/settings (schema Settings;
// its free-form configuration is GroupSettingsConfiguration).
type wSettings struct {
	Configuration wGroupSettingsConfiguration `json:"configuration"`
	LockedOptions map[string]any              `json:"lockedoptions"`
}

func settingsView(s settings) wSettings {
	c := newWGroupSettingsConfiguration()
	cs := &c.CommunicationSettings
	cs.Mode = s.mode
	cs.PullModeHeartbeatFreqInSeconds = s.pull
	cs.UploadOpStateHeartbeatFreqInSeconds = s.opState
	cs.UploadLogHeartbeatFreqInSeconds = s.upLog
	cs.UploadCmdStateHeartbeatFreqInSeconds = s.cmd
	cs.SemServer = wServerListSummary{Name: s.msl}
	cs.DownloadProfile = true
	cs.ConnectToServer = true
	c.GeneralSettings.SecuritySettings = wSecuritySettings{SecureCommunications: s.secure, StoppedMode: s.stoppedMode}
	return wSettings{Configuration: c, LockedOptions: map[string]any{}}
}

// locationSettings renders the settings of a group's location; an inheriting group
// shows the settings it inherits.
func (m *model) locationSettings(groupID, locID string) (wSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.groupLocked(groupID)
	if err != nil {
		return wSettings{}, err
	}
	l, err := g.locIndex(locID)
	if err != nil {
		return wSettings{}, err
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

func (m *model) clientVersions() wClientVersionResponse {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := make([]int, len(m.builds))
	for i := range m.clients {
		counts[m.clients[i].build]++
	}
	out := wClientVersionResponse{ClientVersionList: []wClientVersion{}, LastUpdated: m.now().UnixMilli()}
	for i, b := range m.builds {
		if counts[i] > 0 {
			out.ClientVersionList = append(out.ClientVersionList, wClientVersion{Version: b.version, FormattedVersion: b.formatted, ClientsCount: counts[i]})
		}
	}
	sort.Slice(out.ClientVersionList, func(i, j int) bool {
		return out.ClientVersionList[i].Version > out.ClientVersionList[j].Version
	})
	return out
}

func (m *model) onlineStatus() wClientsOnlineStatsResponse {
	m.mu.Lock()
	defer m.mu.Unlock()
	on := m.onlineN // kept as clients change, not counted per call
	return wClientsOnlineStatsResponse{
		ClientCountStatsList: []wClientsOnlineStats{{Status: "Online", ClientsCount: on}, {Status: "Offline", ClientsCount: len(m.clients) - on}},
		LastUpdated:          m.now().UnixMilli(),
	}
}

func (m *model) adminServers() []wServer {
	out := make([]wServer, 0, len(m.servers))
	for _, s := range m.servers {
		v := newWServer()
		v.Id = s.id
		out = append(out, v)
	}
	return out
}

func (m *model) replicationStatus() wReplicationStatusResponse {
	r := newWReplicationStatusResponse()
	r.ReplicationStatus.Id = m.siteID
	r.ReplicationStatus.SiteName = siteName
	r.ReplicationStatus.SiteLocation = "NA"
	return r
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
