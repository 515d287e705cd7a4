package sepm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// envelope selects which paging fields a fake page carries.
type envelope int

const (
	envFull       envelope = iota // every field, as SEPM sends
	envLastPage                   // content and lastPage only
	envTotalPages                 // content and totalPages only
	envBare                       // content only: the client must stop at an empty page
)

// pager serves items page by page like SEPM: pageIndex from 1, pageSize.
func pager(t *testing.T, items []json.RawMessage, env envelope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		idx, err1 := strconv.Atoi(q.Get("pageIndex"))
		size, err2 := strconv.Atoi(q.Get("pageSize"))
		if err1 != nil || err2 != nil || idx < 1 || size < 1 {
			t.Errorf("bad paging query %q", r.URL.RawQuery)
			writeError(w, http.StatusBadRequest, "The parameters are invalid.")
			return
		}
		lo := min((idx-1)*size, len(items))
		hi := min(lo+size, len(items))
		pages := (len(items) + size - 1) / size
		p := map[string]any{"content": items[lo:hi]}
		if env == envFull || env == envLastPage {
			p["lastPage"] = idx >= pages
		}
		if env == envFull || env == envTotalPages {
			p["totalPages"] = pages
		}
		if env == envFull {
			p["firstPage"], p["number"], p["size"] = idx == 1, idx-1, size
			p["numberOfElements"], p["totalElements"] = hi-lo, len(items)
			p["sort"] = []any{map[string]any{"property": "name", "ascending": true}} // unknown field
		}
		writeJSON(w, http.StatusOK, p)
	}
}

// fakeGroups builds n groups from the example's shape: unknown fields kept, some
// optional fields missing, and every 7th with the full path in name and an empty
// fullPathName (as some SEPM versions reply).
func fakeGroups(t *testing.T, n int) []json.RawMessage {
	var ex Page[map[string]any]
	if err := json.Unmarshal(readTestdata(t, "groups-page.json"), &ex); err != nil {
		t.Fatal(err)
	}
	out := make([]json.RawMessage, n)
	for i := range n {
		g := map[string]any{}
		for k, v := range ex.Content[1] {
			g[k] = v
		}
		g["id"] = fmt.Sprintf("G%05d", i)
		g["name"] = fmt.Sprintf("Group %d", i)
		g["fullPathName"] = fmt.Sprintf("My Company\\Group %d", i)
		switch i % 7 {
		case 3:
			delete(g, "description")
			delete(g, "domain")
			delete(g, "policyDate")
			delete(g, "numberOfPhysicalComputers")
		case 5:
			g["name"], g["fullPathName"] = fmt.Sprintf("My Company\\Group %d", i), ""
		}
		b, _ := json.Marshal(g)
		out[i] = b
	}
	return out
}

func TestGroupsPaging(t *testing.T) {
	for _, env := range []envelope{envFull, envLastPage, envTotalPages, envBare} {
		t.Run(fmt.Sprint("envelope", env), func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /sepm/api/v1/groups", pager(t, fakeGroups(t, 2501), env))
			c := newTestClient(t, f, nil)
			groups, err := c.Groups(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) != 2501 {
				t.Fatalf("got %d groups, want 2501", len(groups))
			}
			for i, g := range groups {
				if g.ID != fmt.Sprintf("G%05d", i) || g.Path() != fmt.Sprintf("My Company\\Group %d", i) {
					t.Fatalf("group %d = %q %q", i, g.ID, g.Path())
				}
			}
			if g := groups[3]; g.Description != "" || g.Domain.Name != "" || g.PolicySerialNumber == "" {
				t.Errorf("group with missing fields decoded as %+v", g)
			}
			if g := groups[0]; g.Domain.Name != "Default" || !g.PolicyInheritanceEnabled || g.NumberOfPhysicalComputers != 412 {
				t.Errorf("group 0 = %+v", g)
			}
			want := []string{"pageIndex=1&pageSize=1000", "pageIndex=2&pageSize=1000", "pageIndex=3&pageSize=1000"}
			if env == envBare {
				want = append(want, "pageIndex=4&pageSize=1000")
			}
			if got := f.queryLog("GET /sepm/api/v1/groups"); !reflect.DeepEqual(got, want) {
				t.Errorf("queries = %q, want %q", got, want)
			}
		})
	}
}

func fakeComputerID(i int) string   { return fmt.Sprintf("%032X", i) }
func fakeComputerName(i int) string { return fmt.Sprintf("PC-%06d", i) }

// fakeComputers builds n computers from the example, unknown fields kept.
func fakeComputers(t testing.TB, n int) []json.RawMessage {
	var ex Page[map[string]any]
	if err := json.Unmarshal(readTestdata(t, "computers-page.json"), &ex); err != nil {
		t.Fatal(err)
	}
	out := make([]json.RawMessage, n)
	for i := range n {
		cm := map[string]any{}
		for k, v := range ex.Content[0] {
			cm[k] = v
		}
		cm["uniqueId"] = fakeComputerID(i)
		cm["computerName"] = fakeComputerName(i)
		if i%3 == 0 {
			delete(cm, "lastServerName")
			delete(cm, "operatingSystem")
		}
		b, _ := json.Marshal(cm)
		out[i] = b
	}
	return out
}

func TestComputersPaging(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/computers", pager(t, fakeComputers(t, 2345), envFull))
	c := newTestClient(t, f, nil)
	ctx := t.Context()

	var sizes []int
	err := c.EachComputerPage(ctx, ComputerQuery{PageSize: 500, LastUpdate: 1764142800000}, func(p []Computer) error {
		sizes = append(sizes, len(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sizes, []int{500, 500, 500, 500, 345}) {
		t.Errorf("page sizes = %v", sizes)
	}
	for i, raw := range f.queryLog("GET /sepm/api/v1/computers") {
		q, _ := url.ParseQuery(raw)
		if q.Get("pageIndex") != strconv.Itoa(i+1) || q.Get("pageSize") != "500" || q.Get("lastUpdate") != "1764142800000" {
			t.Errorf("query %d = %q", i, raw)
		}
	}

	all, err := c.Computers(ctx, ComputerQuery{PageSize: 5000}) // capped to 1000
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2345 {
		t.Fatalf("got %d computers", len(all))
	}
	last := f.queryLog("GET /sepm/api/v1/computers")
	if q := last[len(last)-1]; strings.Contains(q, "lastUpdate") || !strings.Contains(q, "pageSize=1000") {
		t.Errorf("query without LastUpdate = %q", q)
	}
	c0, c1 := all[0], all[1]
	if c0.UniqueID != fmt.Sprintf("%032X", 0) || c0.LastServerName != "" || c1.LastServerName != "sepm-02" {
		t.Errorf("computers = %+v / %+v", c0, c1)
	}
	if c1.AgentVersion != "14.3.9816.7000" || c1.OnlineStatus != 1 || c1.LastUpdateTime != 1764142800123 ||
		c1.ProfileSerialNo != "D1E2-11/24/2026 16:00:00 000" || c1.Group.Path() != "My Company\\Workstations" {
		t.Errorf("computer 1 = %+v", c1)
	}

	stop := fmt.Errorf("enough")
	n := 0
	err = c.EachComputerPage(ctx, ComputerQuery{}, func(p []Computer) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("callback error: err %v after %d pages", err, n)
	}
}

// TestPagingRefusesRepeatedPage: a server that ignores pageIndex is caught at the
// second page, by the first record's key or, for records without one, by the
// records themselves, also when the envelope's number follows pageIndex (the
// server stops answering after ten pages, so a missed repeat fails fast).
func TestPagingRefusesRepeatedPage(t *testing.T) {
	for name, body := range map[string]string{
		"keyed":            `{"content":[{"uniqueId":"A","onlineStatus":1,"lastUpdateTime":1,"profileSerialNo":"S","agentVersion":"14.3"},{"uniqueId":"B"}],"lastPage":false}`,
		"keyless":          `{"content":[{"onlineStatus":1,"lastUpdateTime":1,"profileSerialNo":"S","agentVersion":"14.3"}],"lastPage":false}`,
		"keyless numbered": `{"content":[{"computerName":"PC","onlineStatus":1,"lastUpdateTime":1,"profileSerialNo":"S","agentVersion":"14.3"}],"lastPage":false,"number":%s}`,
	} {
		f := newFake(t)
		f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
			idx := r.URL.Query().Get("pageIndex")
			if n, _ := strconv.Atoi(idx); n > 10 {
				writeError(w, http.StatusBadRequest, "no more pages")
				return
			}
			b := body
			if strings.Contains(b, "%s") {
				b = fmt.Sprintf(b, idx)
			}
			writeRaw(w, http.StatusOK, []byte(b))
		})
		c := newTestClient(t, f, nil)
		_, err := c.Computers(t.Context(), ComputerQuery{})
		if err == nil || !strings.Contains(err.Error(), "repeats") {
			t.Fatalf("%s: err = %v, want a repeated-page error", name, err)
		}
		if n := f.hitCount("GET /sepm/api/v1/computers"); n != 2 {
			t.Errorf("%s: calls = %d, want 2", name, n)
		}
		err = c.EachComputerMarkPage(t.Context(), ComputerQuery{}, func([]ComputerMark) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "repeats") {
			t.Fatalf("%s: mark read: err = %v, want a repeated-page error", name, err)
		}
		if n := f.hitCount("GET /sepm/api/v1/computers"); n != 4 {
			t.Errorf("%s: calls = %d, want 4", name, n)
		}
	}
}

// TestPagingReadsKeylessPagesThatDiffer: pages whose records carry no uniqueId are
// read to the end when each differs from the one before, by Computers and by a mark
// read, whichever field differs (page 7 differs from page 6 only in where its name
// ends and its serial begins).
func TestPagingReadsKeylessPagesThatDiffer(t *testing.T) {
	type rec struct{ name, serial, group, online, update string }
	pages := []rec{
		{"PC", "S", "G", "1", "1"},
		{"PC2", "S", "G", "1", "1"},   // the name
		{"PC2", "S3", "G", "1", "1"},  // the serial
		{"PC2", "S3", "G4", "1", "1"}, // the group
		{"PC2", "S3", "G4", "0", "1"}, // online
		{"PC2", "S3", "G4", "0", "6"}, // the check-in
		{"PC2S", "3", "G4", "0", "6"}, // the same bytes, split differently
	}
	f := newFake(t)
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		idx, err := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		if err != nil || idx < 1 || idx > len(pages) {
			writeError(w, http.StatusBadRequest, "no such page")
			return
		}
		p := pages[idx-1]
		writeRaw(w, http.StatusOK, fmt.Appendf(nil, `{"content":[{"computerName":%q,"profileSerialNo":%q,"group":{"id":%q},"onlineStatus":%s,"lastUpdateTime":%s,"agentVersion":"14.3"}],"number":%d,"totalPages":%d,"lastPage":%t}`,
			p.name, p.serial, p.group, p.online, p.update, idx-1, len(pages), idx == len(pages)))
	})
	c := newTestClient(t, f, nil)
	got, err := c.Computers(t.Context(), ComputerQuery{})
	if err != nil || len(got) != len(pages) {
		t.Fatalf("Computers: %d records, err %v; want %d, no error", len(got), err, len(pages))
	}
	n := 0
	err = c.EachComputerMarkPage(t.Context(), ComputerQuery{}, func(page []ComputerMark) error {
		n += len(page)
		return nil
	})
	if err != nil || n != len(pages) {
		t.Fatalf("mark read: %d records, err %v; want %d, no error", n, err, len(pages))
	}
}

func TestLocations(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/groups/{id}/locations", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "8C3E11A0F2B94D7C9E6A5B4C3D2E1F00" || r.URL.Query().Get("hasName") != "true" {
			t.Errorf("request %s", r.URL)
		}
		writeRaw(w, http.StatusOK, readTestdata(t, "locations.json"))
	})
	c := newTestClient(t, f, nil)
	got, err := c.Locations(t.Context(), "8C3E11A0F2B94D7C9E6A5B4C3D2E1F00")
	if err != nil {
		t.Fatal(err)
	}
	want := []Location{
		{ID: "4A5B6C7D8E9F40112233445566778899", Name: "Default"},
		{ID: "7788990011224455AABBCCDDEEFF0011", Name: "Remote VPN"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("locations = %+v, want %+v", got, want)
	}
}

func TestParseLocation(t *testing.T) {
	for in, want := range map[string]Location{
		"Default:/sepm/api/v1/groups/G/locations/L1":         {ID: "L1", Name: "Default"},
		"Office: Berlin:/sepm/api/v1/groups/G/locations/L2":  {ID: "L2", Name: "Office: Berlin"},
		"Remote VPN:/sepm/api/v1/groups/G/locations/L3/":     {ID: "L3", Name: "Remote VPN"},
		"/sepm/api/v1/groups/G/locations/L4":                 {ID: "L4"},
		"L5":                                                 {ID: "L5"},
		" Spaces :/sepm/api/v1/groups/G/locations/L6 ":       {ID: "L6", Name: "Spaces "},
		"Name:With:Colons:/sepm/api/v1/groups/G/locations/7": {ID: "7", Name: "Name:With:Colons"},
	} {
		got, err := parseLocation(in)
		if err != nil || got != want {
			t.Errorf("parseLocation(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Name:/", "/"} {
		if got, err := parseLocation(bad); err == nil {
			t.Errorf("parseLocation(%q) = %+v, want an error", bad, got)
		}
	}
	if l, err := decodeLocation(json.RawMessage(`{"id":"X","name":"Obj"}`)); err != nil || l != (Location{ID: "X", Name: "Obj"}) {
		t.Errorf("object entry = %+v, %v", l, err)
	}
}
