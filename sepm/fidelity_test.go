package sepm

import (
	"errors"
	"net/http"
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
