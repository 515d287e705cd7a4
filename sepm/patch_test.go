package sepm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// settingsFake keeps one location's settings as raw JSON (from testdata/settings.json,
// unknown fields included) and merges PATCH bodies into it.
type settingsFake struct {
	mu       sync.Mutex
	settings map[string]any
	bodies   []string
	patches  atomic.Int32
	gets     atomic.Int32

	apply  bool                 // merge the patch
	status int                  // reply status of PATCH
	stall  bool                 // answer PATCH only after the client gave up
	tamper func(map[string]any) // changes the stored settings after a merge
}

func newSettingsFake(t *testing.T, f *fakeSEPM) *settingsFake {
	s := &settingsFake{apply: true, status: http.StatusOK}
	if err := json.Unmarshal(readTestdata(t, "settings.json"), &s.settings); err != nil {
		t.Fatal(err)
	}
	const path = "/sepm/api/v1/groups/{g}/locations/{l}/settings"
	f.handle("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, s.settings)
	})
	f.handle("PATCH "+path, func(w http.ResponseWriter, r *http.Request) {
		s.patches.Add(1)
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			writeError(w, http.StatusBadRequest, "The parameters are invalid.")
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		if s.apply {
			merge(s.settings, body)
			if s.tamper != nil {
				s.tamper(s.settings)
			}
		}
		s.mu.Unlock()
		if s.stall {
			stall(r)
		}
		if s.status >= 300 {
			writeError(w, s.status, "The web service encountered an error while processing the web request.")
			return
		}
		w.WriteHeader(s.status)
	})
	return s
}

// merge copies src into dst recursively (JSON merge of objects).
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func boolp(b bool) *bool { return &b }

func disableSecureComms() Configuration {
	return Configuration{GeneralSettings: &GeneralSettings{SecuritySettings: &SecuritySettings{SecureCommunications: boolp(false)}}}
}

func assignMSL(name string) Configuration {
	return Configuration{CommunicationSettings: &CommunicationSettings{SemServer: &ServerListSummary{Name: name}}}
}

func TestPatchSendsOnlyTheChange(t *testing.T) {
	for _, tc := range []struct {
		example string
		patch   Configuration
	}{
		{"settings-patch-disable-secure-comms.json", disableSecureComms()},
		{"settings-patch-assign-msl.json", assignMSL("Default Management Server List (HTTP 8014)")},
	} {
		t.Run(tc.example, func(t *testing.T) {
			f := newFake(t)
			s := newSettingsFake(t, f)
			c := newTestClient(t, f, nil)
			got, err := c.PatchLocationSettings(t.Context(), "G1", "L1", tc.patch)
			if err != nil {
				t.Fatal(err)
			}
			var sent, want any
			s.mu.Lock()
			body := s.bodies[0]
			s.mu.Unlock()
			_ = json.Unmarshal([]byte(body), &sent)
			_ = json.Unmarshal(readTestdata(t, tc.example), &want)
			if !reflect.DeepEqual(sent, want) {
				t.Errorf("PATCH body = %s, want the shape of %s", body, tc.example)
			}
			if applied(tc.patch, got.Configuration) != nil {
				t.Errorf("returned settings do not show the change: %+v", got.Configuration)
			}
			if cs := got.Configuration.CommunicationSettings; cs == nil || cs.Mode != "PUSH" || *cs.PullModeHeartbeatFreqInSeconds != 300 {
				t.Errorf("read-back lost the rest of the settings: %+v", cs)
			}
			if s.patches.Load() != 1 || s.gets.Load() != 1 {
				t.Errorf("PATCH %d, GET %d; want 1 and 1", s.patches.Load(), s.gets.Load())
			}
		})
	}
}

func TestPatchNeverRetriedBlindly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(*settingsFake)
		timeout time.Duration
		wantErr func(*testing.T, error)
	}{
		{name: "500 but applied", setup: func(s *settingsFake) { s.status = 500 }},
		{name: "timeout but applied", setup: func(s *settingsFake) { s.stall = true }, timeout: 300 * time.Millisecond},
		{name: "500 not applied", setup: func(s *settingsFake) { s.status, s.apply = 500, false },
			wantErr: func(t *testing.T, err error) {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(err.Error(), "not applied") {
					t.Errorf("err = %v, want the 500 and that the read-back shows it not applied", err)
				}
			}},
		{name: "timeout not applied", setup: func(s *settingsFake) { s.stall, s.apply = true, false }, timeout: 300 * time.Millisecond,
			wantErr: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "no reply within") {
					t.Errorf("err = %v, want the timeout", err)
				}
			}},
		{name: "200 but read-back differs", setup: func(s *settingsFake) {
			s.tamper = func(m map[string]any) { // SEPM silently keeps secure communication on
				m["configuration"].(map[string]any)["general_settings"].(map[string]any)["security_settings"].(map[string]any)["secure_communications"] = true
			}
		},
			wantErr: func(t *testing.T, err error) {
				var na *NotAppliedError
				if !errors.As(err, &na) {
					t.Fatalf("err = %v, want *NotAppliedError", err)
				}
				want := NotAppliedError{Field: "general_settings.security_settings.secure_communications", Want: "false", Got: "true"}
				if *na != want {
					t.Errorf("NotAppliedError = %+v, want %+v", *na, want)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			s := newSettingsFake(t, f)
			tc.setup(s)
			c := newTestClient(t, f, func(cfg *Config) {
				if tc.timeout > 0 {
					cfg.Timeout = tc.timeout
				}
			})
			if err := c.Login(t.Context()); err != nil {
				t.Fatal(err)
			}
			got, err := c.PatchLocationSettings(t.Context(), "G1", "L1", disableSecureComms())
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v, want success from the read-back", err)
				}
				if sc := got.Configuration.GeneralSettings.SecuritySettings.SecureCommunications; sc == nil || *sc {
					t.Errorf("returned settings: secure_communications = %v", sc)
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				tc.wantErr(t, err)
			}
			if n := s.patches.Load(); n != 1 {
				t.Errorf("PATCH sent %d times, want exactly 1", n)
			}
			if n := s.gets.Load(); n != 1 {
				t.Errorf("read-back GETs = %d, want 1", n)
			}
		})
	}
}

func TestPatchRefusedIsNotReadBack(t *testing.T) {
	f := newFake(t)
	s := newSettingsFake(t, f)
	s.status, s.apply = http.StatusBadRequest, false
	c := newTestClient(t, f, nil)
	_, err := c.PatchLocationSettings(t.Context(), "G1", "L1", assignMSL("nope"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Method != "PATCH" {
		t.Fatalf("err = %v, want *APIError 400 on PATCH", err)
	}
	if s.patches.Load() != 1 || s.gets.Load() != 0 {
		t.Errorf("PATCH %d, GET %d; want 1 and 0", s.patches.Load(), s.gets.Load())
	}
}

func TestPatchReloginOn401(t *testing.T) {
	f := newFake(t)
	s := newSettingsFake(t, f)
	c := newTestClient(t, f, nil)
	if err := c.Login(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.expireAll()
	if _, err := c.PatchLocationSettings(t.Context(), "G1", "L1", assignMSL("MSL 2")); err != nil {
		t.Fatal(err)
	}
	// The refused PATCH reached the auth check only; the one after the new login applied.
	if n := f.hitCount("PATCH /sepm/api/v1/groups/G1/locations/L1/settings"); n != 2 || s.patches.Load() != 1 {
		t.Errorf("PATCH requests %d (applied %d), want 2 (1)", n, s.patches.Load())
	}
}

func TestPatchEmpty(t *testing.T) {
	f := newFake(t)
	s := newSettingsFake(t, f)
	c := newTestClient(t, f, nil)
	empty := Configuration{CommunicationSettings: &CommunicationSettings{}}
	if _, err := c.PatchLocationSettings(t.Context(), "G1", "L1", empty); err == nil {
		t.Fatal("an empty patch was accepted")
	}
	if s.patches.Load() != 0 {
		t.Error("an empty patch was sent")
	}
}

func TestAppliedComparesEveryPatchedField(t *testing.T) {
	hb := func(v int64) *int64 { return &v }
	var got Settings
	if err := json.Unmarshal(readTestdata(t, "settings.json"), &got); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		patch Configuration
		field string // "" = applied
	}{
		{Configuration{CommunicationSettings: &CommunicationSettings{Mode: "push"}}, ""},
		{Configuration{CommunicationSettings: &CommunicationSettings{Mode: "PULL"}}, "communication_settings.mode"},
		{Configuration{CommunicationSettings: &CommunicationSettings{PullModeHeartbeatFreqInSeconds: hb(300), UploadLogHeartbeatFreqInSeconds: hb(300)}}, ""},
		{Configuration{CommunicationSettings: &CommunicationSettings{UploadCmdStateHeartbeatFreqInSec: hb(60)}}, "communication_settings.upload_cmd_state_heartbeat_freq_in_seconds"},
		{Configuration{CommunicationSettings: &CommunicationSettings{UploadOpStateHeartbeatFreqInSec: hb(60)}}, "communication_settings.upload_op_state_heartbeat_freq_in_seconds"},
		{assignMSL("Default Management Server List"), ""},
		{assignMSL("Other"), "communication_settings.sem_server.name"},
		{Configuration{GeneralSettings: &GeneralSettings{SecuritySettings: &SecuritySettings{SecureCommunications: boolp(true), StoppedMode: "ALLOW"}}}, ""},
		{Configuration{GeneralSettings: &GeneralSettings{SecuritySettings: &SecuritySettings{StoppedMode: "BLOCK"}}}, "general_settings.security_settings.stopped_mode"},
		{disableSecureComms(), "general_settings.security_settings.secure_communications"},
	} {
		na := applied(tc.patch, got.Configuration)
		switch {
		case tc.field == "" && na != nil:
			t.Errorf("patch %+v: %v", tc.patch, na)
		case tc.field != "" && (na == nil || na.Field != tc.field):
			t.Errorf("patch %+v: got %v, want a difference in %s", tc.patch, na, tc.field)
		}
	}
	if na := applied(assignMSL("X"), Configuration{}); na == nil || na.Got != "" {
		t.Errorf("read-back without the section: %v", na)
	}
}
