package sim

import (
	"sort"

	"sepmbot/sepm"
)

// patchKey names a target of PATCH groups/{g}/locations/{l}/settings.
type patchKey struct{ g, l int }

// patchCount counts the accepted PATCHes of one target.
type patchCount struct {
	n      int
	fields map[string]*FieldPatches
}

// PatchCount is FleetReport's count of the accepted PATCHes of one group/location
// (SEPM's side of "applied twice": every PATCH answered 200, or applied before an
// injected 500).
type PatchCount struct {
	GroupID    string `json:"groupId"`
	LocationID string `json:"locationId"`
	Group      string `json:"group"`    // full path
	Location   string `json:"location"` // name
	// Count is the number of accepted PATCH requests on the target.
	Count int `json:"count"`
	// Fields counts, per field (its path in the settings, e.g.
	// "general_settings.security_settings.secure_communications"), the PATCHes that
	// carried it and those that changed its value.
	Fields map[string]FieldPatches `json:"fields"`
}

// FieldPatches counts the PATCHes of one field of one target.
type FieldPatches struct {
	Sent    int `json:"sent"`
	Changed int `json:"changed"`
}

// Field names of PatchCount.Fields.
const (
	FieldMode          = "communication_settings.mode"
	FieldPullHeartbeat = "communication_settings.pull_mode_heartbeat_freq_in_seconds"
	FieldOpHeartbeat   = "communication_settings.upload_op_state_heartbeat_freq_in_seconds"
	FieldLogHeartbeat  = "communication_settings.upload_log_heartbeat_freq_in_seconds"
	FieldCmdHeartbeat  = "communication_settings.upload_cmd_state_heartbeat_freq_in_seconds"
	FieldSemServer     = "communication_settings.sem_server"
	FieldSecure        = "general_settings.security_settings.secure_communications"
	FieldStoppedMode   = "general_settings.security_settings.stopped_mode"
)

// countPatchLocked records an accepted PATCH of target (g, l) with body cfg that
// took the settings from before to after.
func (m *model) countPatchLocked(g *group, l int, cfg sepm.Configuration, before, after settings) {
	k := patchKey{g.idx, l}
	pc := m.patches[k]
	if pc == nil {
		pc = &patchCount{fields: map[string]*FieldPatches{}}
		m.patches[k] = pc
	}
	pc.n++
	add := func(name string, changed bool) {
		f := pc.fields[name]
		if f == nil {
			f = &FieldPatches{}
			pc.fields[name] = f
		}
		f.Sent++
		if changed {
			f.Changed++
		}
	}
	if cs := cfg.CommunicationSettings; cs != nil {
		if cs.Mode != "" {
			add(FieldMode, before.mode != after.mode)
		}
		if cs.PullModeHeartbeatFreqInSeconds != nil {
			add(FieldPullHeartbeat, before.pull != after.pull)
		}
		if cs.UploadOpStateHeartbeatFreqInSec != nil {
			add(FieldOpHeartbeat, before.opState != after.opState)
		}
		if cs.UploadLogHeartbeatFreqInSeconds != nil {
			add(FieldLogHeartbeat, before.upLog != after.upLog)
		}
		if cs.UploadCmdStateHeartbeatFreqInSec != nil {
			add(FieldCmdHeartbeat, before.cmd != after.cmd)
		}
		if cs.SemServer != nil {
			add(FieldSemServer, before.msl != after.msl)
		}
	}
	if gs := cfg.GeneralSettings; gs != nil && gs.SecuritySettings != nil {
		if gs.SecuritySettings.SecureCommunications != nil {
			add(FieldSecure, before.secure != after.secure)
		}
		if gs.SecuritySettings.StoppedMode != "" {
			add(FieldStoppedMode, before.stoppedMode != after.stoppedMode)
		}
	}
}

// patchReportLocked lists the PATCH counts by group path, then location name.
func (m *model) patchReportLocked() []PatchCount {
	out := make([]PatchCount, 0, len(m.patches))
	for k, pc := range m.patches {
		g := m.groups[k.g]
		p := PatchCount{GroupID: g.id, LocationID: g.locs[k.l].id, Group: g.path, Location: g.locs[k.l].name,
			Count: pc.n, Fields: make(map[string]FieldPatches, len(pc.fields))}
		for name, f := range pc.fields {
			p.Fields[name] = *f
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Location < out[j].Location
	})
	return out
}
