package sim

import (
	"fmt"
	"strings"
)

// The simulator's computers page as it was rendered before the page was built
// outside the model lock and streamed (a scan of the fleet, each record's view
// marshalled by encoding/json): the reference the streamed reply must equal byte
// for byte (page_test.go).

// refComputersPage answers a computer query with a page of full (wPage[wComputer])
// or reduced (wPage[wComputerReduced]) records; groupID (groups/{g}/computers)
// limits it to one group.
func (m *model) refComputersPage(q computerQuery, groupID string) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if groupID != "" {
		g, err := m.groupLocked(groupID)
		if err != nil {
			return nil, err
		}
		q.group = int32(g.idx)
	}
	match := m.matchLocked(q, -1) // the scan, as before the index
	n := len(match)
	// Each record as encoding/json renders the view, not through the streamed
	// templates (recordtmpl.go) the reply uses.
	at := func(k int) wComputer {
		if q.desc {
			k = n - 1 - k
		}
		return m.computerView(m.rowLocked(match[k]))
	}
	if q.reduced {
		return pageOf(n, q.index, q.size, func(lo, hi int) []wComputerReduced {
			out := make([]wComputerReduced, 0, hi-lo)
			for k := lo; k < hi; k++ {
				out = append(out, reduce(at(k)))
			}
			return out
		}), nil
	}
	return pageOf(n, q.index, q.size, func(lo, hi int) []wComputer {
		out := make([]wComputer, 0, hi-lo)
		for k := lo; k < hi; k++ {
			out = append(out, at(k))
		}
		return out
	}), nil
}

// computerView renders client i from row as a wComputer, field by field: the
// record the templates of recordtmpl.go must write (full, or through reduce).
func (m *model) computerView(row pageRow) wComputer {
	c := &m.clients[row.idx]
	g := m.groups[c.group]
	online := 0
	if row.online {
		online = 1
	}
	b := &m.builds[c.build]
	v := computerTemplate
	v.ComputerName = c.name
	v.UniqueId = c.uid
	v.AgentId = strings.ToUpper(c.hwKey[16:]) + c.uid[:16]
	v.HardwareKey = c.hwKey
	v.AgentVersion = b.version
	v.AgentType = "105"
	v.OnlineStatus = online
	v.LastUpdateTime = row.lastUpdate
	v.ProfileSerialNo = row.serial
	srv := m.servers[row.lastServer]
	v.LastServerName = srv.name
	v.LastServerId = srv.id
	v.LastSiteName = siteName
	v.LastSiteId = m.siteID
	v.LastConnectedIpAddr = c.ip
	v.IpAddresses = []string{c.ip}
	v.MacAddresses = []string{fmt.Sprintf("02-00-%s-%s-%s-%s", c.hwKey[0:2], c.hwKey[2:4], c.hwKey[4:6], c.hwKey[6:8])}
	v.SubnetMasks = []string{"255.0.0.0"}
	v.Gateways = []string{"127.0.0.1"}
	v.DnsServers = []string{"127.0.0.53"}
	v.WinServers = []string{}
	v.OperatingSystem = osNames[c.os]
	v.OsName = osNames[c.os]
	v.OsFunction = "Workstation"
	if c.os == 2 {
		v.OsFunction = "Server"
	}
	v.DomainOrWorkgroup = "WORKGROUP"
	v.CreationTime = m.created
	v.MajorVersion, v.MinorVersion = b.major, 0
	// Like real SEPM: the full path in name, fullPathName left empty.
	v.Group = wGroupSummary{Id: g.id, Name: g.path, FullPathName: "", Domain: m.domain()}
	return v
}
