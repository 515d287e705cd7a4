package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Acceptance 2 of issue 13: the spec's query filters, orders and page sizes.

type computersReply struct {
	Content []struct {
		ComputerName string `json:"computerName"`
		UniqueID     string `json:"uniqueId"`
		HardwareKey  string `json:"hardwareKey"`
		AgentID      string `json:"agentId"`
	} `json:"content"`
	Size          int   `json:"size"`
	TotalElements int64 `json:"totalElements"`
}

type groupsReply struct {
	Content []groupNode `json:"content"`
	Size    int         `json:"size"`
}

type groupNode struct {
	ID           string      `json:"id"`
	Name         string      `json:"name"`
	FullPathName string      `json:"fullPathName"`
	ChildGroups  []groupNode `json:"childGroups"`
}

func getJSON(t *testing.T, c *http.Client, u, tok string, out any) int {
	t.Helper()
	st, b := rawDo(t, c, "GET", u, tok, nil)
	if st == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	return st
}

func TestComputerQueries(t *testing.T) {
	s := startSite(t, Options{Clients: 300, Groups: 6})
	c := rawClient(s)
	tok := rawLogin(t, s, c)
	base := s.URL() + "/sepm/api/v1/computers"
	var all computersReply
	if st := getJSON(t, c, base+"?pageSize=1000", tok, &all); st != 200 || len(all.Content) != 300 {
		t.Fatalf("all: %d, %d computers", st, len(all.Content))
	}
	// The default order is COMPUTER_NAME ascending; the default page size 20.
	names := make([]string, len(all.Content))
	for i, cm := range all.Content {
		names[i] = cm.ComputerName
	}
	if !slices.IsSorted(names) {
		t.Fatalf("default order is not by name: %v", names[:10])
	}
	var def computersReply
	if getJSON(t, c, base, tok, &def); len(def.Content) != 20 || def.Size != 20 || def.TotalElements != 300 {
		t.Fatalf("default page: %d items, size %d, total %d", len(def.Content), def.Size, def.TotalElements)
	}
	// computerName returns that computer only; '*' is a wildcard; any case.
	want := all.Content[137]
	var one computersReply
	getJSON(t, c, base+"?computerName="+url.QueryEscape(strings.ToLower(want.ComputerName)), tok, &one)
	if len(one.Content) != 1 || one.Content[0].UniqueID != want.UniqueID {
		t.Fatalf("computerName=%s: %+v", want.ComputerName, one.Content)
	}
	prefix := want.ComputerName[:4]
	var wild computersReply
	getJSON(t, c, base+"?pageSize=1000&computerName="+url.QueryEscape(prefix+"*"), tok, &wild)
	n := 0
	for _, nm := range names {
		if strings.HasPrefix(nm, prefix) {
			n++
		}
	}
	if len(wild.Content) != n || n == 0 {
		t.Fatalf("computerName=%s*: %d, want %d", prefix, len(wild.Content), n)
	}
	// computer_id and hardware_key pick one computer and ignore the other conditions.
	var byID, byKey computersReply
	getJSON(t, c, base+"?computer_id="+want.UniqueID+"&computerName=nomatch", tok, &byID)
	getJSON(t, c, base+"?hardware_key="+want.HardwareKey+"&lastUpdate=99999999999999", tok, &byKey)
	if len(byID.Content) != 1 || byID.Content[0].UniqueID != want.UniqueID || len(byKey.Content) != 1 || byKey.Content[0].UniqueID != want.UniqueID {
		t.Fatalf("computer_id: %+v, hardware_key: %+v", byID.Content, byKey.Content)
	}
	if want.AgentID == "" || len(want.AgentID) != 32 {
		t.Fatalf("agentId %q", want.AgentID)
	}
	// sort and order.
	var desc, ids computersReply
	getJSON(t, c, base+"?pageSize=1000&order=DESC", tok, &desc)
	getJSON(t, c, base+"?pageSize=1000&sort=COMPUTER_ID&order=asc", tok, &ids)
	if desc.Content[0].ComputerName != names[len(names)-1] || desc.Content[299].ComputerName != names[0] {
		t.Fatalf("order=DESC: first %s last %s", desc.Content[0].ComputerName, desc.Content[299].ComputerName)
	}
	uids := make([]string, len(ids.Content))
	for i, cm := range ids.Content {
		uids[i] = cm.UniqueID
	}
	if !slices.IsSorted(uids) || (uids[0] == all.Content[0].UniqueID && uids[1] == all.Content[1].UniqueID) {
		t.Fatalf("sort=COMPUTER_ID not by id")
	}
	if st := getJSON(t, c, base+"?sort=AGE", tok, &one); st != 400 {
		t.Fatalf("unknown sort: %d", st)
	}
}

func TestGroupQueries(t *testing.T) {
	s := startSite(t, Options{Clients: 50, Groups: 30})
	c := rawClient(s)
	tok := rawLogin(t, s, c)
	base := s.URL() + "/sepm/api/v1/groups"
	var def groupsReply
	if getJSON(t, c, base, tok, &def); len(def.Content) != 25 || def.Size != 25 {
		t.Fatalf("default page: %d groups, size %d (spec: 25)", len(def.Content), def.Size)
	}
	var all groupsReply
	getJSON(t, c, base+"?pageSize=1000", tok, &all)
	names := make([]string, len(all.Content))
	for i, g := range all.Content {
		names[i] = strings.ToLower(g.Name)
	}
	if len(all.Content) != 30 || !slices.IsSorted(names) {
		t.Fatalf("default order is not by name: %v", names)
	}
	var desc groupsReply
	getJSON(t, c, base+"?pageSize=1000&sort=fullPathName&order=DESC", tok, &desc)
	paths := make([]string, len(desc.Content))
	for i, g := range desc.Content {
		paths[len(paths)-1-i] = strings.ToLower(g.FullPathName)
	}
	if !slices.IsSorted(paths) {
		t.Fatalf("sort=fullPathName&order=DESC: %v", paths)
	}
	// fullPathName finds one group, in any case.
	var one groupsReply
	getJSON(t, c, base+"?fullPathName="+url.QueryEscape(`my company\workstations`), tok, &one)
	if len(one.Content) != 1 || one.Content[0].FullPathName != `My Company\Workstations` {
		t.Fatalf("fullPathName: %+v", one.Content)
	}
	var none groupsReply
	if st := getJSON(t, c, base+"?fullPathName=nowhere", tok, &none); st != 200 || len(none.Content) != 0 {
		t.Fatalf("unknown fullPathName: %d %+v", st, none.Content)
	}
	// mode=tree: the root with every group nested below it, once.
	var tree groupsReply
	getJSON(t, c, base+"?mode=tree", tok, &tree)
	if len(tree.Content) != 1 || tree.Content[0].FullPathName != rootName {
		t.Fatalf("tree roots: %+v", tree.Content)
	}
	seen := map[string]bool{}
	var walk func(g groupNode, parent string)
	walk = func(g groupNode, parent string) {
		if seen[g.ID] {
			t.Fatalf("%s twice in the tree", g.FullPathName)
		}
		seen[g.ID] = true
		if parent != "" && !strings.HasPrefix(g.FullPathName, parent+`\`) {
			t.Fatalf("%s nested under %s", g.FullPathName, parent)
		}
		for _, k := range g.ChildGroups {
			walk(k, g.FullPathName)
		}
	}
	walk(tree.Content[0], "")
	if len(seen) != 30 {
		t.Fatalf("tree holds %d groups, want 30", len(seen))
	}
}
