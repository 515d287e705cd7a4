package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file writes computer records without reflection: the JSON that
// encoding/json makes of a record (full: every field of the schema, in the order
// of wComputer; reduced: wComputerReduced) is cut once per model at the fields
// that differ between clients, and each record is the cut pieces with its own
// values in between, each value escaped exactly as encoding/json escapes it. The
// bytes are those of json.Encoder on the record built field by field
// (pageref_test.go's computerView), or on its reduction (page_test.go compares
// them).

// recField is a field of a record that differs between clients.
type recField uint8

const (
	rfAgentID recField = iota
	rfAgentVersion
	rfComputerName
	rfGroupID
	rfGroupName
	rfHardwareKey
	rfIP       // ipAddresses' one address
	rfLastIP   // lastConnectedIpAddr
	rfServerID // lastServerId
	rfServer   // lastServerName
	rfUpdate   // lastUpdateTime
	rfMAC      // macAddresses' one address
	rfMajor    // majorVersion
	rfOnline   // onlineStatus
	rfOS       // operatingSystem
	rfOSFunc   // osFunction
	rfOSName   // osName
	rfSerial   // profileSerialNo
	rfUniqueID // uniqueId
	rfCount
)

// recordTemplate is the JSON of a record cut at its recFields: segs[0], the
// value of fields[0], segs[1], ..., segs[len(fields)].
type recordTemplate struct {
	segs   [][]byte
	fields []recField
}

func strSentinel(f recField) string { return fmt.Sprintf("sepmbot-sim-field-%02d", f) }
func intSentinel(f recField) int    { return 987_650_000 + int(f) }

// newRecordTemplate cuts the record of this model's constants at every recField
// it holds: a full record holds each once, a reduced one (reduced) those that
// reduce keeps, once each.
func (m *model) newRecordTemplate(reduced bool) (*recordTemplate, error) {
	v := computerTemplate
	s := strSentinel
	v.AgentId, v.AgentVersion, v.ComputerName, v.HardwareKey = s(rfAgentID), s(rfAgentVersion), s(rfComputerName), s(rfHardwareKey)
	v.AgentType = "105"
	v.OnlineStatus, v.MajorVersion, v.MinorVersion = intSentinel(rfOnline), intSentinel(rfMajor), 0
	v.LastUpdateTime = int64(intSentinel(rfUpdate))
	v.ProfileSerialNo, v.LastServerName, v.LastServerId = s(rfSerial), s(rfServer), s(rfServerID)
	v.LastSiteName, v.LastSiteId = siteName, m.siteID
	v.LastConnectedIpAddr = s(rfLastIP)
	v.IpAddresses = []string{s(rfIP)}
	v.MacAddresses = []string{s(rfMAC)}
	v.SubnetMasks = []string{"255.0.0.0"}
	v.Gateways = []string{"127.0.0.1"}
	v.DnsServers = []string{"127.0.0.53"}
	v.WinServers = []string{}
	v.OperatingSystem, v.OsName, v.OsFunction = s(rfOS), s(rfOSName), s(rfOSFunc)
	v.DomainOrWorkgroup = "WORKGROUP"
	v.CreationTime = m.created
	v.UniqueId = s(rfUniqueID)
	v.Group = wGroupSummary{Id: s(rfGroupID), Name: s(rfGroupName), FullPathName: "", Domain: m.domain()}
	var rec any = v
	if reduced {
		rec = reduce(v)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(rec); err != nil {
		return nil, err
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	type cut struct {
		at, n int
		f     recField
	}
	var cuts []cut
	for f := range rfCount {
		var tok []byte
		switch f {
		case rfOnline, rfMajor, rfUpdate:
			tok = []byte(strconv.Itoa(intSentinel(f)))
		default:
			tok = []byte(`"` + strSentinel(f) + `"`)
		}
		switch n := bytes.Count(raw, tok); {
		case n == 0 && reduced: // a field the reduced record leaves out (reduce)
			continue
		case n != 1:
			return nil, fmt.Errorf("sim: record template (reduced %t): field %d appears %d times", reduced, f, n)
		}
		cuts = append(cuts, cut{bytes.Index(raw, tok), len(tok), f})
	}
	// Order the cuts by position.
	for i := 1; i < len(cuts); i++ {
		for j := i; j > 0 && cuts[j].at < cuts[j-1].at; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	t := &recordTemplate{}
	prev := 0
	for _, c := range cuts {
		t.segs = append(t.segs, bytes.Clone(raw[prev:c.at]))
		t.fields = append(t.fields, c.f)
		prev = c.at + c.n
	}
	t.segs = append(t.segs, bytes.Clone(raw[prev:]))
	return t, nil
}

// appendRecord appends the record of row that t cuts (full or reduced).
func (m *model) appendRecord(dst []byte, t *recordTemplate, row pageRow) []byte {
	c := &m.clients[row.idx]
	g := m.groups[c.group]
	b := &m.builds[c.build]
	srv := m.servers[row.lastServer]
	for k, f := range t.fields {
		dst = append(dst, t.segs[k]...)
		switch f {
		case rfAgentID:
			dst = append(dst, '"')
			dst = appendUpperASCII(dst, c.hwKey[16:])
			dst = append(dst, c.uid[:16]...)
			dst = append(dst, '"')
		case rfAgentVersion:
			dst = appendJSONString(dst, b.version)
		case rfComputerName:
			dst = appendJSONString(dst, c.name)
		case rfGroupID:
			dst = appendJSONString(dst, g.id)
		case rfGroupName:
			dst = appendJSONString(dst, g.path)
		case rfHardwareKey:
			dst = appendJSONString(dst, c.hwKey)
		case rfIP, rfLastIP:
			dst = appendJSONString(dst, c.ip)
		case rfServerID:
			dst = appendJSONString(dst, srv.id)
		case rfServer:
			dst = appendJSONString(dst, srv.name)
		case rfUpdate:
			dst = strconv.AppendInt(dst, row.lastUpdate, 10)
		case rfMAC:
			h := c.hwKey
			dst = append(dst, `"02-00-`...)
			dst = append(dst, h[0:2]...)
			dst = append(dst, '-')
			dst = append(dst, h[2:4]...)
			dst = append(dst, '-')
			dst = append(dst, h[4:6]...)
			dst = append(dst, '-')
			dst = append(dst, h[6:8]...)
			dst = append(dst, '"')
		case rfMajor:
			dst = strconv.AppendInt(dst, int64(b.major), 10)
		case rfOnline:
			if row.online {
				dst = append(dst, '1')
			} else {
				dst = append(dst, '0')
			}
		case rfOS, rfOSName:
			dst = appendJSONString(dst, osNames[c.os])
		case rfOSFunc:
			if c.os == 2 {
				dst = append(dst, `"Server"`...)
			} else {
				dst = append(dst, `"Workstation"`...)
			}
		case rfSerial:
			dst = appendJSONString(dst, row.serial)
		case rfUniqueID:
			dst = appendJSONString(dst, c.uid)
		}
	}
	return append(dst, t.segs[len(t.fields)]...)
}

// appendUpperASCII appends s upper-cased; s is hex (ASCII), so it needs no escape
// and strings.ToUpper's result is the same.
func appendUpperASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return dst
}

// appendJSONString appends s as encoding/json writes it (HTML-safe escapes):
// printable ASCII other than " \ < > & as is, anything else through
// json.Marshal itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch >= utf8.RuneSelf || ch == '"' || ch == '\\' || ch == '<' || ch == '>' || ch == '&' {
			q, _ := json.Marshal(s)
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
