package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The contract test checks every JSON reply the sim emits against Broadcom's whole
// Swagger document (testdata/openapi-full.json): every field of the reply must exist
// in the schema with the right JSON type and enum value, recursively, following $ref;
// every field of the schema must be in the reply (full mode), required ones always;
// and every status the sim answers on a path must be one the document lists for it.

type swaggerDoc struct {
	Paths       map[string]map[string]json.RawMessage `json:"paths"`
	Definitions map[string]map[string]any             `json:"definitions"`
}

// loadSwagger prefers the package's own copy (testdata), then shared/ beside the clone.
func loadSwagger(t *testing.T) (*swaggerDoc, map[string]any) {
	t.Helper()
	local := filepath.Join("testdata", "openapi-full.json")
	shared := filepath.Join("..", "..", "..", "shared", "sepm-api", "openapi-full.json")
	raw, err := os.ReadFile(local)
	if err != nil {
		raw, err = os.ReadFile(shared)
		if err != nil {
			t.Fatalf("no openapi-full.json in %s or %s", local, shared)
		}
	} else if other, err := os.ReadFile(shared); err == nil && !bytes.Equal(other, raw) {
		t.Errorf("%s differs from %s: refresh the copy", local, shared)
	}
	var doc swaggerDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	return &doc, generic
}

// replySchema is the 200 schema of a path and method in the document.
func replySchema(t *testing.T, generic map[string]any, path, method string) map[string]any {
	t.Helper()
	p, ok := generic["paths"].(map[string]any)["/api/v1/"+path].(map[string]any)
	if !ok {
		t.Fatalf("no path /api/v1/%s in the document", path)
	}
	op, ok := p[method].(map[string]any)
	if !ok {
		t.Fatalf("no %s /api/v1/%s in the document", method, path)
	}
	ok200, ok := op["responses"].(map[string]any)["200"].(map[string]any)
	if !ok {
		t.Fatalf("%s /api/v1/%s: no 200 reply", method, path)
	}
	s, ok := ok200["schema"].(map[string]any)
	if !ok {
		t.Fatalf("%s /api/v1/%s: the 200 reply has no schema", method, path)
	}
	return s
}

// specStatuses lists the statuses the document gives for a path and method.
func specStatuses(t *testing.T, generic map[string]any, path, method string) []string {
	t.Helper()
	p, ok := generic["paths"].(map[string]any)["/api/v1/"+path].(map[string]any)
	if !ok {
		t.Fatalf("no path /api/v1/%s in the document", path)
	}
	op, ok := p[method].(map[string]any)
	if !ok {
		t.Fatalf("no %s /api/v1/%s in the document", method, path)
	}
	var out []string
	for k := range op["responses"].(map[string]any) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type validator struct {
	defs map[string]map[string]any
	// overrides give a schema for a JSON location where the document declares only
	// a free-form object ("$.content[]" for page items, for example).
	overrides map[string]map[string]any
	errs      []string
	checked   int
	// full requires every property of an object's schema in the reply.
	full bool
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/definitions/" + name} }

func (v *validator) resolve(s map[string]any) (map[string]any, error) {
	for range 20 {
		r, ok := s["$ref"].(string)
		if !ok {
			return s, nil
		}
		name, ok := strings.CutPrefix(r, "#/definitions/")
		if !ok {
			return nil, fmt.Errorf("unsupported $ref %q", r)
		}
		d, ok := v.defs[name]
		if !ok {
			return nil, fmt.Errorf("$ref to missing definition %q", name)
		}
		s = d
	}
	return nil, fmt.Errorf("$ref loop")
}

func (v *validator) fail(loc, format string, a ...any) {
	v.errs = append(v.errs, loc+": "+fmt.Sprintf(format, a...))
}

func jsonType(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", x)
}

func (v *validator) check(loc string, val any, schema map[string]any) {
	if o, ok := v.overrides[loc]; ok {
		schema = o
	}
	s, err := v.resolve(schema)
	if err != nil {
		v.fail(loc, "%v", err)
		return
	}
	v.checked++
	want, _ := s["type"].(string)
	got := jsonType(val)
	if want == "" && s["properties"] != nil {
		want = "object"
	}
	switch {
	case want == "":
		v.fail(loc, "the schema gives no type for a %s", got)
		return
	case want == "number" && (got == "integer" || got == "number"):
	case want != got:
		v.fail(loc, "%s in the reply, %s in the schema", got, want)
		return
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(val) }) {
		v.fail(loc, "%v is not in the schema's enum %v", val, enum)
	}
	switch got {
	case "object":
		obj := val.(map[string]any)
		props, _ := s["properties"].(map[string]any)
		addl, _ := s["additionalProperties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					v.fail(loc, "required field %q missing", r)
				}
			}
		}
		if v.full {
			names := make([]string, 0, len(props))
			for k := range props {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if _, ok := obj[k]; !ok {
					v.fail(loc, "schema field %q missing", k)
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := loc + "." + k
			if ps, ok := props[k].(map[string]any); ok {
				v.check(sub, obj[k], ps)
				continue
			}
			if addl != nil {
				v.check(sub, obj[k], addl)
				continue
			}
			if o, ok := v.overrides[sub]; ok {
				v.check(sub, obj[k], o)
				continue
			}
			if props == nil {
				v.fail(loc, "free-form object in the schema but the reply has field %q (add an override)", k)
			} else {
				v.fail(sub, "field not in the schema")
			}
		}
	case "array":
		items, _ := s["items"].(map[string]any)
		if _, ok := v.overrides[loc+"[]"]; ok && items == nil {
			items = map[string]any{} // the override gives the items' schema
		}
		for _, it := range val.([]any) {
			if items == nil {
				v.fail(loc, "array without an items schema")
				return
			}
			v.check(loc+"[]", it, items)
		}
	}
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, b)
	}
	return v
}

func TestContractRepliesMatchSwagger(t *testing.T) {
	doc, generic := loadSwagger(t)
	s := startSite(t, Options{Clients: 50, Servers: 2, Groups: 8, OfflinePercent: 10})
	c := rawClient(s)
	tok := rawLogin(t, s, c)
	base := s.URL() + "/sepm/api/v1/"

	var groupID, inheritingID, locID string
	{
		st, b := rawDo(t, c, "GET", base+"groups?pageIndex=1&pageSize=1000", tok, nil)
		if st != 200 {
			t.Fatalf("groups: %d %s", st, b)
		}
		var page struct {
			Content []struct {
				ID       string `json:"id"`
				Inherits bool   `json:"policyInheritanceEnabled"`
				Loc      string `json:"defaultLocationId"`
			} `json:"content"`
		}
		_ = json.Unmarshal(b, &page)
		for _, g := range page.Content {
			if g.Inherits && inheritingID == "" {
				inheritingID = g.ID
			}
			if !g.Inherits && groupID == "" {
				groupID, locID = g.ID, g.Loc
			}
		}
		if groupID == "" || inheritingID == "" {
			t.Fatalf("groups page has no inheriting and non-inheriting groups: %s", b)
		}
	}
	// The same PATCH shapes as the project's examples.
	patch := map[string]any{"configuration": map[string]any{"general_settings": map[string]any{"security_settings": map[string]any{"secure_communications": false}}}}
	st, b := rawDo(t, c, "PATCH", base+"groups/"+groupID+"/locations/"+locID+"/settings", tok, patch)
	if st != 200 || len(bytes.TrimSpace(b)) != 0 {
		t.Fatalf("PATCH: %d %q", st, b)
	}

	errorSchema := map[string]any{ // README.md: errors are {"errorCode","appErrorCode","errorMessage"} (not in the document)
		"type":     "object",
		"required": []any{"errorCode", "appErrorCode", "errorMessage"},
		"properties": map[string]any{
			"errorCode": map[string]any{"type": "string"}, "appErrorCode": map[string]any{"type": "string"}, "errorMessage": map[string]any{"type": "string"},
		},
	}
	groupsPage := map[string]map[string]any{"$.content[]": ref("Group")}
	groupsTree := map[string]map[string]any{"$.content[]": ref("Group"), "$.content[].childGroups[]": ref("Group"),
		"$.content[].childGroups[].childGroups[]": ref("Group"), "$.content[].childGroups[].childGroups[].childGroups[]": ref("Group")}
	computersPage := map[string]map[string]any{"$.content[]": ref("Computer")}
	settings := map[string]map[string]any{"$.configuration": ref("GroupSettingsConfiguration")}
	// The document declares locations as objects; SEPM returns strings
	// "Name:/sepm/api/v1/groups/G/locations/L" (README.md, examples/locations.json).
	locations := map[string]map[string]any{"$[]": {"type": "string"}}
	// The document declares the location's policies as free-form objects; the
	// simulator's shape.
	policies := map[string]map[string]any{"$[]": {"type": "object", "properties": map[string]any{
		"policyType": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"}, "inherited": map[string]any{"type": "boolean"}}}}
	const unknownGroup = "0123456789ABCDEF0123456789ABCDEF"

	cases := []struct {
		name, method, url, token string
		body                     any
		status                   int
		specPath                 string                    // "" for a path the document does not have
		overrides                map[string]map[string]any // for the document's free-form parts
	}{
		{name: "authenticate", method: "POST", url: base + "identity/authenticate", body: map[string]string{"username": "admin", "password": testPassword, "domain": "Default"}, status: 200, specPath: "identity/authenticate"},
		{name: "version", method: "GET", url: base + "version", status: 200, specPath: "version"},
		{name: "current user", method: "GET", url: base + "sessions/currentuser", token: tok, status: 200, specPath: "sessions/currentuser"},
		{name: "domains", method: "GET", url: base + "domains", token: tok, status: 200, specPath: "domains"},
		{name: "groups default page", method: "GET", url: base + "groups", token: tok, status: 200, specPath: "groups", overrides: groupsPage},
		{name: "groups page", method: "GET", url: base + "groups?pageIndex=1&pageSize=3", token: tok, status: 200, specPath: "groups", overrides: groupsPage},
		{name: "groups last page", method: "GET", url: base + "groups?pageIndex=3&pageSize=3", token: tok, status: 200, specPath: "groups", overrides: groupsPage},
		{name: "groups by path", method: "GET", url: base + "groups?fullPathName=" + url.QueryEscape(`My Company\Workstations`), token: tok, status: 200, specPath: "groups", overrides: groupsPage},
		{name: "groups tree", method: "GET", url: base + "groups?mode=tree", token: tok, status: 200, specPath: "groups", overrides: groupsTree},
		{name: "group", method: "GET", url: base + "groups/" + groupID, token: tok, status: 200, specPath: "groups/{groupId}"},
		{name: "group computers", method: "GET", url: base + "groups/" + inheritingID + "/computers?pageSize=5", token: tok, status: 200, specPath: "groups/{groupId}/computers", overrides: computersPage},
		{name: "locations", method: "GET", url: base + "groups/" + groupID + "/locations?hasName=true", token: tok, status: 200, specPath: "groups/{groupId}/locations", overrides: locations},
		{name: "location policies", method: "GET", url: base + "groups/" + groupID + "/locations/" + locID + "/policies", token: tok, status: 200, specPath: "groups/{groupId}/locations/{locationId}/policies", overrides: policies},
		{name: "settings", method: "GET", url: base + "groups/" + groupID + "/locations/" + locID + "/settings", token: tok, status: 200, specPath: "groups/{groupId}/locations/{locationId}/settings", overrides: settings},
		{name: "computers page", method: "GET", url: base + "computers?pageIndex=1&pageSize=20", token: tok, status: 200, specPath: "computers", overrides: computersPage},
		{name: "computers since", method: "GET", url: base + "computers?pageIndex=1&pageSize=20&lastUpdate=1", token: tok, status: 200, specPath: "computers", overrides: computersPage},
		{name: "computers by name", method: "GET", url: base + "computers?computerName=WOR-*&sort=COMPUTER_ID&order=DESC", token: tok, status: 200, specPath: "computers", overrides: computersPage},
		{name: "client versions", method: "GET", url: base + "stats/client/version", token: tok, status: 200, specPath: "stats/client/version"},
		{name: "online status", method: "GET", url: base + "stats/client/onlinestatus", token: tok, status: 200, specPath: "stats/client/onlinestatus"},
		{name: "admin servers", method: "GET", url: base + "admin/servers", token: tok, status: 200, specPath: "admin/servers"},
		{name: "replication status", method: "GET", url: base + "replication/status", token: tok, status: 200, specPath: "replication/status"},
		{name: "is replicated", method: "GET", url: base + "replication/is_replicated", token: tok, status: 200, specPath: "replication/is_replicated"},
		// Errors, each with a status the document lists for its path.
		{name: "error: no token", method: "GET", url: base + "groups", status: 401, specPath: "groups"},
		{name: "error: bad password", method: "POST", url: base + "identity/authenticate", body: map[string]string{"username": "admin", "password": "wrong"}, status: 401, specPath: "identity/authenticate"},
		{name: "error: unknown group", method: "GET", url: base + "groups/" + unknownGroup, token: tok, status: 410, specPath: "groups/{groupId}"},
		{name: "error: unknown group's locations", method: "GET", url: base + "groups/" + unknownGroup + "/locations", token: tok, status: 410, specPath: "groups/{groupId}/locations"},
		{name: "error: unknown location's policies", method: "GET", url: base + "groups/" + groupID + "/locations/x/policies", token: tok, status: 410, specPath: "groups/{groupId}/locations/{locationId}/policies"},
		{name: "error: unknown location's settings", method: "GET", url: base + "groups/" + groupID + "/locations/x/settings", token: tok, status: 404, specPath: "groups/{groupId}/locations/{locationId}/settings"},
		{name: "error: PATCH unknown location", method: "PATCH", url: base + "groups/" + inheritingID + "/locations/x/settings", token: tok, body: patch, status: 404, specPath: "groups/{groupId}/locations/{locationId}/settings"},
		{name: "error: bad page", method: "GET", url: base + "computers?pageIndex=0", token: tok, status: 400, specPath: "computers"},
		{name: "error: bad sort", method: "GET", url: base + "computers?sort=SIZE", token: tok, status: 400, specPath: "computers"},
		{name: "error: bad order", method: "GET", url: base + "groups?order=UP", token: tok, status: 400, specPath: "groups"},
		{name: "error: bad mode", method: "GET", url: base + "groups?mode=forest", token: tok, status: 400, specPath: "groups"},
		{name: "error: replicate without partner", method: "POST", url: base + "replication/replicatenow?partnerSiteName=Site2&content=false&logs=false", token: tok, status: 400, specPath: "replication/replicatenow"},
		{name: "error: replicate missing parameters", method: "POST", url: base + "replication/replicatenow", token: tok, status: 400, specPath: "replication/replicatenow"},
		{name: "error: unknown path", method: "GET", url: base + "nothing/here", token: tok, status: 404},
		{name: "error: wrong method", method: "DELETE", url: base + "computers", token: tok, status: 405},
	}
	v := &validator{defs: doc.Definitions, full: true}
	for _, tc := range cases {
		st, b := rawDo(t, c, tc.method, tc.url, tc.token, tc.body)
		if st != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, st, tc.status, b)
			continue
		}
		var schema map[string]any
		switch {
		case st >= 400:
			schema = errorSchema
			if tc.specPath != "" {
				if listed := specStatuses(t, generic, tc.specPath, strings.ToLower(tc.method)); !slices.Contains(listed, fmt.Sprint(st)) {
					t.Errorf("%s: status %d is not among the document's %v for %s %s", tc.name, st, listed, tc.method, tc.specPath)
				}
			}
		default:
			schema = replySchema(t, generic, tc.specPath, strings.ToLower(tc.method))
		}
		v.overrides = tc.overrides
		before := len(v.errs)
		val := decodeNumbers(t, b)
		if arr, ok := val.([]any); ok && len(arr) == 0 {
			t.Errorf("%s: empty array, nothing to check", tc.name)
		}
		v.check("$", val, schema)
		for _, e := range v.errs[before:] {
			t.Errorf("%s: %s", tc.name, e)
		}
	}
	if v.checked < 2000 {
		t.Errorf("only %d values checked", v.checked)
	}
	// The PATCH on an inheriting group's real location is refused with the documented message.
	st, b = rawDo(t, c, "GET", base+"groups/"+inheritingID+"/locations?hasName=true", tok, nil)
	var locs []string
	if err := json.Unmarshal(b, &locs); st != 200 || err != nil || len(locs) == 0 {
		t.Fatalf("locations of the inheriting group: %d %s", st, b)
	}
	inhLoc := locs[0][strings.LastIndex(locs[0], "/")+1:]
	st, b = rawDo(t, c, "PATCH", base+"groups/"+inheritingID+"/locations/"+inhLoc+"/settings", tok, patch)
	if st != 400 || !strings.Contains(string(b), "group inherits its policy from its parent") {
		t.Fatalf("PATCH on an inheriting group: %d %s", st, b)
	}
	// A PATCH naming an unknown MSL is refused.
	st, _ = rawDo(t, c, "PATCH", base+"groups/"+groupID+"/locations/"+locID+"/settings", tok,
		map[string]any{"configuration": map[string]any{"communication_settings": map[string]any{"sem_server": map[string]any{"name": "No Such List"}}}})
	if st != 400 {
		t.Fatalf("PATCH with an unknown MSL: %d", st)
	}
}

// TestContractValidatorCatchesMismatches keeps the validator honest.
func TestContractValidatorCatchesMismatches(t *testing.T) {
	doc, _ := loadSwagger(t)
	v := &validator{defs: doc.Definitions}
	bad := decodeNumbers(t, []byte(`{"computerName": 5, "noSuchField": "x", "group": {"id": true}, "onlineStatus": "1"}`))
	v.check("$", bad, ref("Computer"))
	want := []string{"$.computerName: integer in the reply, string in the schema", "$.group.id: boolean in the reply, string in the schema", "$.noSuchField: field not in the schema", "$.onlineStatus: string in the reply, integer in the schema"}
	if strings.Join(v.errs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(v.errs, "\n"), strings.Join(want, "\n"))
	}
	v = &validator{defs: doc.Definitions}
	v.check("$", decodeNumbers(t, []byte(`{"content":[{"a":1}]}`)), ref("PageObject"))
	if len(v.errs) != 1 || !strings.Contains(v.errs[0], "free-form object") {
		t.Fatalf("free-form page item without override: %v", v.errs)
	}
	v = &validator{defs: doc.Definitions}
	v.check("$", decodeNumbers(t, []byte(`{"clientVersionList":[]}`)), ref("ClientVersionResponse"))
	if len(v.errs) != 1 || !strings.Contains(v.errs[0], `"lastUpdated" missing`) {
		t.Fatalf("missing required field: %v", v.errs)
	}
}

// TestContractFullModeCatchesMissingFields: in full mode every schema field must be
// in the reply.
func TestContractFullModeCatchesMissingFields(t *testing.T) {
	doc, _ := loadSwagger(t)
	v := &validator{defs: doc.Definitions, full: true}
	v.check("$", decodeNumbers(t, []byte(`{"id":"x","name":"n"}`)), ref("DomainSummary"))
	if len(v.errs) != 0 {
		t.Fatalf("complete DomainSummary: %v", v.errs)
	}
	v.check("$", decodeNumbers(t, []byte(`{"id":"x"}`)), ref("DomainSummary"))
	if len(v.errs) != 1 || !strings.Contains(v.errs[0], `schema field "name" missing`) {
		t.Fatalf("missing field: %v", v.errs)
	}
}
