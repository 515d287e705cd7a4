package sim

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// This file answers the list queries (GET computers, groups/{g}/computers, groups)
// with the spec's filters, sort orders and default page sizes.

// Default page sizes (Broadcom's spec).
const (
	defaultComputersPageSize = 20
	defaultGroupsPageSize    = 25
	maxPageSize              = 1000
)

// paging reads pageIndex (from 1, default 1) and pageSize (default def, at most 1000).
func paging(q url.Values, def int) (index, size int, err error) {
	index, size = 1, def
	if v := q.Get("pageIndex"); v != "" {
		if index, err = strconv.Atoi(v); err != nil || index < 1 {
			return 0, 0, badRequest("pageIndex must be a whole number from 1")
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 {
			return 0, 0, badRequest("pageSize must be a whole number from 1")
		}
	}
	return index, min(size, maxPageSize), nil
}

// descending reads order: ASC (the default) or DESC, any case.
func descending(q url.Values) (bool, error) {
	switch strings.ToUpper(q.Get("order")) {
	case "", "ASC":
		return false, nil
	case "DESC":
		return true, nil
	}
	return false, badRequest("order must be ASC or DESC")
}

// wildcard matches s against a pattern where '*' stands for any run, ignoring case
// (computerName and mac in GET computers).
func wildcard(pattern, s string) bool {
	ok, err := path.Match(strings.ToLower(strings.ReplaceAll(pattern, "?", `\?`)), strings.ToLower(s))
	return err == nil && ok
}

// computerQuery is a parsed GET computers (or groups/{g}/computers) query.
type computerQuery struct {
	index, size int
	lastUpdate  int64
	group       int32 // -1 for all
	name        string
	computerID  string
	hardwareKey string
	byID, desc  bool
	reduced     bool // verbose=true: the spec's "reduced set of computer information"
}

// parseComputerQuery reads the spec's parameters: computerName (wildcard *),
// computer_id and hardware_key (each ignores the other conditions), lastUpdate,
// sort (COMPUTER_NAME, the default, COMPUTER_ID, COMPUTER_DOMAIN_NAME, DOMAIN_ID),
// order, pageIndex, pageSize (default 20).
func parseComputerQuery(q url.Values) (computerQuery, error) {
	cq := computerQuery{group: -1}
	var err error
	if cq.index, cq.size, err = paging(q, defaultComputersPageSize); err != nil {
		return cq, err
	}
	if v := q.Get("lastUpdate"); v != "" {
		if cq.lastUpdate, err = strconv.ParseInt(v, 10, 64); err != nil {
			return cq, badRequest("lastUpdate must be epoch milliseconds")
		}
	}
	switch strings.ToUpper(q.Get("sort")) {
	case "", "COMPUTER_NAME", "COMPUTER_DOMAIN_NAME", "DOMAIN_ID":
		// One domain: the domain orders sort like the name.
	case "COMPUTER_ID":
		cq.byID = true
	default:
		return cq, badRequest("sort must be COMPUTER_NAME, COMPUTER_ID, COMPUTER_DOMAIN_NAME or DOMAIN_ID")
	}
	if cq.desc, err = descending(q); err != nil {
		return cq, err
	}
	if v := q.Get("verbose"); v != "" {
		if cq.reduced, err = strconv.ParseBool(v); err != nil {
			return cq, badRequest("verbose must be true or false")
		}
	}
	cq.name = q.Get("computerName")
	cq.computerID = strings.ToUpper(q.Get("computer_id"))
	cq.hardwareKey = strings.ToLower(q.Get("hardware_key"))
	return cq, nil
}

// computerTemplate holds the fields every computer shares.
var computerTemplate = func() wComputer {
	v := newWComputer()
	v.Infected = 0
	v.OsBitness = "x64"
	v.OsLanguage = "en-US"
	v.ProcessorType = "Intel64 Family 6"
	v.LogicalCpus, v.PhysicalCpus = 4, 2
	return v
}()

// wComputerReduced is a computer as GET computers?verbose=true answers it: the
// spec promises "a reduced set of computer information" without listing it; the
// simulator keeps the identity, status, policy and group fields (every one of them
// a field of the schema Computer).
type wComputerReduced struct {
	AgentID             string        `json:"agentId"`
	AgentVersion        string        `json:"agentVersion"`
	ComputerName        string        `json:"computerName"`
	DomainOrWorkgroup   string        `json:"domainOrWorkgroup"`
	Group               wGroupSummary `json:"group"`
	HardwareKey         string        `json:"hardwareKey"`
	IPAddresses         []string      `json:"ipAddresses"`
	LastConnectedIPAddr string        `json:"lastConnectedIpAddr"`
	LastServerID        string        `json:"lastServerId"`
	LastServerName      string        `json:"lastServerName"`
	LastSiteID          string        `json:"lastSiteId"`
	LastSiteName        string        `json:"lastSiteName"`
	LastUpdateTime      int64         `json:"lastUpdateTime"`
	OnlineStatus        int           `json:"onlineStatus"`
	OperatingSystem     string        `json:"operatingSystem"`
	ProfileSerialNo     string        `json:"profileSerialNo"`
	UniqueID            string        `json:"uniqueId"`
}

func reduce(v wComputer) wComputerReduced {
	return wComputerReduced{AgentID: v.AgentId, AgentVersion: v.AgentVersion, ComputerName: v.ComputerName, DomainOrWorkgroup: v.DomainOrWorkgroup,
		Group: v.Group, HardwareKey: v.HardwareKey, IPAddresses: v.IpAddresses, LastConnectedIPAddr: v.LastConnectedIpAddr,
		LastServerID: v.LastServerId, LastServerName: v.LastServerName, LastSiteID: v.LastSiteId, LastSiteName: v.LastSiteName,
		LastUpdateTime: v.LastUpdateTime, OnlineStatus: v.OnlineStatus, OperatingSystem: v.OperatingSystem,
		ProfileSerialNo: v.ProfileSerialNo, UniqueID: v.UniqueId}
}

// pageRow is the changing state of one client of a page, copied under the lock.
type pageRow struct {
	lastUpdate int64
	serial     string
	idx        int32
	lastServer int16
	online     bool
}

// computerPage is a page of a computer query: its envelope and its rows, rendered
// and written by writeComputerPage without the model lock.
type computerPage struct {
	env     wPage[struct{}] // Content unused
	rows    []pageRow
	reduced bool
}

// computersPage answers a computer query (groupID, for groups/{g}/computers,
// limits it to one group): under the model lock it selects the clients and copies
// the changing state of the page's own; the records are built later, as they are
// written.
func (m *model) computersPage(q computerQuery, groupID string) (*computerPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if groupID != "" {
		g, err := m.groupLocked(groupID)
		if err != nil {
			return nil, err
		}
		q.group = int32(g.idx)
	}
	match := m.matchLocked(q, luIndexLimit(len(m.clients)))
	n := len(match)
	p := &computerPage{reduced: q.reduced}
	p.env = pageOf(n, q.index, q.size, func(lo, hi int) []struct{} {
		p.rows = make([]pageRow, 0, hi-lo)
		for k := lo; k < hi; k++ {
			if q.desc {
				p.rows = append(p.rows, m.rowLocked(match[n-1-k]))
			} else {
				p.rows = append(p.rows, m.rowLocked(match[k]))
			}
		}
		return nil
	})
	p.env.NumberOfElements = len(p.rows)
	return p, nil
}

func (m *model) rowLocked(i int32) pageRow {
	c := &m.clients[i]
	return pageRow{lastUpdate: c.lastUpdate, serial: c.serial, idx: i, lastServer: c.lastServer, online: c.checkingIn()}
}

// matchLocked lists the clients a computer query selects, in the query's sort
// order (ascending; the caller reverses for DESC). A lastUpdate filter reads the
// lastUpdate index when at most indexLimit clients changed since, and scans the
// fleet otherwise; both give the same list.
func (m *model) matchLocked(q computerQuery, indexLimit int) []int32 {
	order, rank := m.sortOf(q)
	var match []int32
	switch {
	case q.computerID != "":
		for _, i := range order {
			if m.clients[i].uid == q.computerID {
				match = append(match, i)
			}
		}
	case q.hardwareKey != "":
		for _, i := range order {
			if m.clients[i].hwKey == q.hardwareKey {
				match = append(match, i)
			}
		}
	case q.group < 0 && q.lastUpdate <= 0 && q.name == "":
		match = order
	default:
		if q.lastUpdate > 0 {
			if indexLimit >= 0 {
				if match, ok := m.cachedSinceLocked(q); ok {
					return match
				}
			}
			if since, ok := m.sinceLocked(nil, q.lastUpdate, indexLimit); ok {
				match = since
				if q.group >= 0 || q.name != "" { // lastUpdate > T holds for every live entry
					match = since[:0]
					for _, i := range since {
						if m.selects(q, &m.clients[i]) {
							match = append(match, i)
						}
					}
				}
				if len(match) <= luSortMax {
					slices.SortFunc(match, func(a, b int32) int { return int(rank[a]) - int(rank[b]) })
					return match
				}
				// Many: mark their positions in the sort order and read the marks in
				// order (a bitmap of the fleet, 62 KB at 500,000), cheaper than sorting;
				// the next page's query starts from them (cachedSinceLocked).
				bits := make([]uint64, (len(m.clients)+63)/64)
				for _, i := range match {
					r := rank[i]
					bits[r>>6] |= 1 << (r & 63)
				}
				match = m.readBitsLocked(match[:0], bits, q)
				m.cacheSinceLocked(q, match, bits)
				return match
			}
		}
		for _, i := range order {
			if m.selects(q, &m.clients[i]) {
				match = append(match, i)
			}
		}
	}
	return match
}

// selects reports whether c passes a query's group, lastUpdate and name filters.
func (m *model) selects(q computerQuery, c *client) bool {
	return (q.group < 0 || c.group == q.group) && c.lastUpdate > q.lastUpdate && (q.name == "" || wildcard(q.name, c.name))
}

// sortIndexesLocked orders the clients by name and by unique id, once: neither
// changes.
func (m *model) sortIndexesLocked() {
	m.byName = make([]int32, len(m.clients))
	for i := range m.byName {
		m.byName[i] = int32(i)
	}
	m.byID = slices.Clone(m.byName)
	slices.SortFunc(m.byName, func(a, b int32) int { return strings.Compare(m.clients[a].name, m.clients[b].name) })
	slices.SortFunc(m.byID, func(a, b int32) int { return strings.Compare(m.clients[a].uid, m.clients[b].uid) })
	m.rankName = make([]int32, len(m.clients))
	m.rankID = make([]int32, len(m.clients))
	for k := range m.byName {
		m.rankName[m.byName[k]] = int32(k)
		m.rankID[m.byID[k]] = int32(k)
	}
}

// groupsQuery answers GET groups: fullPathName (exact, any case), sort (name, the
// default, or any Group field among fullPathName, id, created, lastModified,
// numberOfPhysicalComputers), order, mode (list, the default, or tree: the root
// group, its children nested in childGroups), pageIndex, pageSize (default 25).
func (m *model) groupsQuery(q url.Values) (wPage[wGroup], error) {
	index, size, err := paging(q, defaultGroupsPageSize)
	if err != nil {
		return wPage[wGroup]{}, err
	}
	desc, err := descending(q)
	if err != nil {
		return wPage[wGroup]{}, err
	}
	var tree bool
	switch strings.ToLower(q.Get("mode")) {
	case "", "list":
	case "tree":
		tree = true
	default:
		return wPage[wGroup]{}, badRequest("mode must be list or tree")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var key func(g *group) string
	switch strings.ToLower(q.Get("sort")) {
	case "", "name":
		key = func(g *group) string { return strings.ToLower(g.name) }
	case "fullpathname":
		key = func(g *group) string { return strings.ToLower(g.path) }
	case "id":
		key = func(g *group) string { return g.id }
	case "created":
		key = func(g *group) string { return fmt.Sprintf("%020d", g.created) }
	case "lastmodified":
		key = func(g *group) string { return fmt.Sprintf("%020d", g.modified) }
	case "numberofphysicalcomputers":
		key = func(g *group) string { return fmt.Sprintf("%020d", g.clients) }
	default:
		return wPage[wGroup]{}, badRequest("sort must be name, fullPathName, id, created, lastModified or numberOfPhysicalComputers")
	}
	sel := make([]*group, 0, len(m.groups))
	for _, g := range m.groups {
		if p := q.Get("fullPathName"); p != "" && !strings.EqualFold(p, g.path) {
			continue
		}
		if tree && q.Get("fullPathName") == "" && g.parent >= 0 {
			continue // the tree hangs from the root
		}
		sel = append(sel, g)
	}
	slices.SortStableFunc(sel, func(a, b *group) int {
		c := strings.Compare(key(a), key(b))
		if c == 0 {
			c = strings.Compare(a.path, b.path)
		}
		if desc {
			c = -c
		}
		return c
	})
	return pageOf(len(sel), index, size, func(lo, hi int) []wGroup {
		out := make([]wGroup, 0, hi-lo)
		for _, g := range sel[lo:hi] {
			if tree {
				out = append(out, m.groupTreeLocked(g))
			} else {
				out = append(out, m.groupViewLocked(g))
			}
		}
		return out
	}), nil
}

// groupTreeLocked renders g with its descendants nested in childGroups (by name).
func (m *model) groupTreeLocked(g *group) wGroup {
	v := m.groupViewLocked(g)
	var kids []*group
	for _, c := range m.groups {
		if c.parent == g.idx {
			kids = append(kids, c)
		}
	}
	slices.SortFunc(kids, func(a, b *group) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) })
	for _, c := range kids {
		v.ChildGroups = append(v.ChildGroups, m.groupTreeLocked(c))
	}
	return v
}
