package sim

import (
	"strings"
	"testing"
)

// TestPagingHugeIndexNoPanic: a pageIndex whose offset overflows int gets an empty
// page (or a 400), not a handler panic and a dropped connection.
func TestPagingHugeIndexNoPanic(t *testing.T) {
	s := startSite(t, Options{Clients: 20})
	c := rawClient(s)
	tok := rawLogin(t, s, c)
	for _, path := range []string{"computers", "groups"} {
		for _, idx := range []string{"9223372036854776", "9223372036854775807"} {
			st, b := rawDo(t, c, "GET", s.URL()+"/sepm/api/v1/"+path+"?pageIndex="+idx+"&pageSize=1000", tok, nil)
			if st != 200 && st != 400 {
				t.Errorf("%s pageIndex=%s: %d %s", path, idx, st, b)
			}
			if st == 200 && !strings.Contains(string(b), `"content":[]`) {
				t.Errorf("%s pageIndex=%s: want an empty page, got %s", path, idx, b)
			}
		}
	}
}

// TestContractValidatorChecksEnums: a value outside the schema's enum (mode "push",
// stopped_mode "MAYBE") is a contract failure.
func TestContractValidatorChecksEnums(t *testing.T) {
	doc, _ := loadSwagger(t)
	v := &validator{defs: doc.Definitions}
	v.check("$", decodeNumbers(t, []byte(`{"mode":"push"}`)), ref("CommunicationSettings"))
	v.check("$", decodeNumbers(t, []byte(`{"stopped_mode":"MAYBE","secure_communications":true}`)), ref("SecuritySettings"))
	v.check("$", decodeNumbers(t, []byte(`{"mode":"PULL"}`)), ref("CommunicationSettings"))
	if len(v.errs) != 2 || !strings.Contains(v.errs[0], "enum") || !strings.Contains(v.errs[1], "enum") {
		t.Fatalf("errors: %q, want two enum failures", v.errs)
	}
}
