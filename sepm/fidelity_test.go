package sepm

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Robustness to what real SEPMs answer: 404 and 410 both mean "not found", and
// enum strings differ in case between versions.

func TestNotFoundIs404And410(t *testing.T) {
	f := newFake(t)
	f.handle("/sepm/api/v1/groups/gone", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusGone, "Cannot find the specified object.")
	})
	f.handle("/sepm/api/v1/groups/missing", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "The requested resource was not found.")
	})
	f.handle("/sepm/api/v1/groups/bad", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusBadRequest, "The parameters are invalid.")
	})
	c := newTestClient(t, f, nil)
	for id, want := range map[string]bool{"gone": true, "missing": true, "bad": false} {
		_, err := c.Group(t.Context(), id)
		if err == nil {
			t.Fatalf("%s: no error", id)
		}
		if errors.Is(err, ErrNotFound) != want {
			t.Errorf("%s: errors.Is(%v, ErrNotFound) = %v, want %v", id, err, !want, want)
		}
	}
}

func TestEnumCaseInsensitive(t *testing.T) {
	f := newFake(t)
	f.handle("/sepm/api/v1/stats/client/onlinestatus", func(w http.ResponseWriter, _ *http.Request) {
		writeRaw(w, 200, []byte(`{"clientCountStatsList":[{"status":"ONLINE","clientsCount":7},{"status":"offline","clientsCount":2}],"lastUpdated":1}`))
	})
	f.handle("/sepm/api/v1/groups/G/locations/L/settings", func(w http.ResponseWriter, _ *http.Request) {
		writeRaw(w, 200, []byte(`{"configuration":{"communication_settings":{"mode":"Pull","pull_mode_heartbeat_freq_in_seconds":300}}}`))
	})
	c := newTestClient(t, f, nil)
	on, err := c.OnlineStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if on.ClientCountStatsList[0].Status != "Online" || on.ClientCountStatsList[1].Status != "Offline" {
		t.Fatalf("statuses: %+v", on.ClientCountStatsList)
	}
	st, err := c.LocationSettings(t.Context(), "G", "L")
	if err != nil {
		t.Fatal(err)
	}
	if st.Configuration.CommunicationSettings.Mode != "PULL" {
		t.Fatalf("mode %q, want PULL", st.Configuration.CommunicationSettings.Mode)
	}
}

// TestComputersAskReducedThenFallBack: the sweep asks for reduced records
// (verbose=true); a SEPM whose reduced records lack what the bot reads gets asked
// again for full records, and from then on only for those.
func TestComputersAskReducedThenFallBack(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		item := `{"computerName":"A","uniqueId":"U1","onlineStatus":1,"lastUpdateTime":5,"profileSerialNo":"S","agentVersion":"14.3.1.1","group":{"id":"G","name":"My Company"}}`
		if r.URL.Query().Get("verbose") == "true" {
			item = `{"computerName":"A","uniqueId":"U1","group":{"id":"G","name":"My Company"}}`
		}
		writeRaw(w, 200, []byte(`{"content":[`+item+`],"firstPage":true,"lastPage":true,"number":0,"numberOfElements":1,"size":1000,"totalElements":1,"totalPages":1}`))
	})
	c := newTestClient(t, f, nil)
	for range 2 {
		all, err := c.Computers(t.Context(), ComputerQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].ProfileSerialNo != "S" || all[0].LastUpdateTime != 5 || all[0].OnlineStatus != 1 {
			t.Fatalf("computers: %+v", all)
		}
	}
	var verbose []string
	for _, q := range f.queryLog("GET /sepm/api/v1/computers") {
		if strings.Contains(q, "verbose=true") {
			verbose = append(verbose, q)
		}
	}
	if got := f.queryLog("GET /sepm/api/v1/computers"); len(got) != 3 || len(verbose) != 1 || !strings.Contains(got[0], "verbose=true") {
		t.Fatalf("queries: %v (want one reduced, then full records only)", got)
	}
}

// TestLastUpdateReadSkipsPresenceCheckAfterSweep: a lastUpdate read checks the
// reduced records only until a whole sweep has shown them complete; whole sweeps
// always check. The fake's reduced records of lastUpdate reads lack the fields, so
// a check there shows as a second, full-record query.
func TestLastUpdateReadSkipsPresenceCheckAfterSweep(t *testing.T) {
	f := newFake(t)
	var bareWhole bool // whole sweeps' reduced records lack the fields too
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		item := `{"computerName":"A","uniqueId":"U1","onlineStatus":1,"lastUpdateTime":5,"profileSerialNo":"S","agentVersion":"14.3.1.1","group":{"id":"G","name":"My Company"}}`
		q := r.URL.Query()
		if q.Get("verbose") == "true" && (q.Get("lastUpdate") != "" || bareWhole) {
			item = `{"computerName":"A","uniqueId":"U1","group":{"id":"G","name":"My Company"}}`
		}
		writeRaw(w, 200, []byte(`{"content":[`+item+`],"firstPage":true,"lastPage":true,"number":0,"numberOfElements":1,"size":1000,"totalElements":1,"totalPages":1}`))
	})
	queries := func() int { return len(f.queryLog("GET /sepm/api/v1/computers")) }
	read := func(c *Client, q ComputerQuery) []Computer {
		t.Helper()
		all, err := c.Computers(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}

	// Before any whole sweep, a lastUpdate read checks and falls back.
	c := newTestClient(t, f, nil)
	if got := read(c, ComputerQuery{LastUpdate: 1}); queries() != 2 || got[0].ProfileSerialNo != "S" {
		t.Fatalf("a lastUpdate read before any sweep: %d queries, %+v (want the check to fall back to full records)", queries(), got)
	}

	// After a whole sweep passed the check, a lastUpdate read is not checked again:
	// its bare records read as zero values, and no full-record query follows.
	c = newTestClient(t, f, nil)
	before := queries()
	read(c, ComputerQuery{})
	got := read(c, ComputerQuery{LastUpdate: 1})
	if queries()-before != 2 || got[0].ProfileSerialNo != "" || got[0].LastUpdateTime != 0 {
		t.Fatalf("after a sweep: %d queries, %+v (want one sweep and one unchecked lastUpdate read)", queries()-before, got)
	}

	// A whole sweep still checks: bare reduced records send it to full records.
	bareWhole = true
	before = queries()
	if got := read(c, ComputerQuery{}); queries()-before != 2 || got[0].ProfileSerialNo != "S" {
		t.Fatalf("a later sweep: %d queries, %+v (want the check to fall back)", queries()-before, got)
	}
}
