package sepm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// NotAppliedError reports a settings change that SEPM accepted but the read-back
// does not show.
type NotAppliedError struct {
	Field, Want, Got string
}

// Error implements error.
func (e *NotAppliedError) Error() string {
	return fmt.Sprintf("sepm: settings change not applied: %s is %q, want %q", e.Field, e.Got, e.Want)
}

// field is one patchable setting: its name in the API and how to read it (ok false
// when the configuration does not set it).
type field struct {
	name string
	get  func(Configuration) (v string, ok bool)
}

// fields lists every setting a patch may carry, in the order they are checked.
var fields = []field{
	commField("mode", func(s *CommunicationSettings) (string, bool) { return strings.ToUpper(s.Mode), s.Mode != "" }),
	commInt("pull_mode_heartbeat_freq_in_seconds", func(s *CommunicationSettings) *int64 { return s.PullModeHeartbeatFreqInSeconds }),
	commInt("upload_op_state_heartbeat_freq_in_seconds", func(s *CommunicationSettings) *int64 { return s.UploadOpStateHeartbeatFreqInSec }),
	commInt("upload_log_heartbeat_freq_in_seconds", func(s *CommunicationSettings) *int64 { return s.UploadLogHeartbeatFreqInSeconds }),
	commInt("upload_cmd_state_heartbeat_freq_in_seconds", func(s *CommunicationSettings) *int64 { return s.UploadCmdStateHeartbeatFreqInSec }),
	commField("sem_server.name", func(s *CommunicationSettings) (string, bool) {
		if s.SemServer == nil {
			return "", false
		}
		return s.SemServer.Name, true
	}),
	secField("secure_communications", func(s *SecuritySettings) (string, bool) {
		if s.SecureCommunications == nil {
			return "", false
		}
		return strconv.FormatBool(*s.SecureCommunications), true
	}),
	secField("stopped_mode", func(s *SecuritySettings) (string, bool) { return s.StoppedMode, s.StoppedMode != "" }),
}

func commField(name string, get func(*CommunicationSettings) (string, bool)) field {
	return field{name: "communication_settings." + name, get: func(c Configuration) (string, bool) {
		if c.CommunicationSettings == nil {
			return "", false
		}
		return get(c.CommunicationSettings)
	}}
}

func commInt(name string, get func(*CommunicationSettings) *int64) field {
	return commField(name, func(s *CommunicationSettings) (string, bool) {
		p := get(s)
		if p == nil {
			return "", false
		}
		return strconv.FormatInt(*p, 10), true
	})
}

func secField(name string, get func(*SecuritySettings) (string, bool)) field {
	return field{name: "general_settings.security_settings." + name, get: func(c Configuration) (string, bool) {
		if c.GeneralSettings == nil || c.GeneralSettings.SecuritySettings == nil {
			return "", false
		}
		return get(c.GeneralSettings.SecuritySettings)
	}}
}

// applied checks that every field set in patch has the same value in got; the first
// difference is returned, nil when there is none.
func applied(patch, got Configuration) *NotAppliedError {
	for _, f := range fields {
		want, ok := f.get(patch)
		if !ok {
			continue
		}
		have, _ := f.get(got)
		if have != want {
			return &NotAppliedError{Field: f.name, Want: want, Got: have}
		}
	}
	return nil
}

// isEmptyPatch reports a patch that sets nothing.
func isEmptyPatch(p Configuration) bool {
	for _, f := range fields {
		if _, ok := f.get(p); ok {
			return false
		}
	}
	return true
}

// PatchLocationSettings changes a location's settings: PATCH {"configuration": patch}
// carrying only the non-nil fields, then reads the settings back and checks every
// field the patch sets (a difference is a *NotAppliedError). The PATCH is never
// repeated: after a transport error, a timeout or a 5xx it reads back, and succeeds if
// the change is there, else returns the error. A 401 is answered by logging in again
// and sending once more (a refused token changes nothing). A 4xx is returned as is.
func (c *Client) PatchLocationSettings(ctx context.Context, groupID, locationID string, patch Configuration) (Settings, error) {
	path := settingsPath(groupID, locationID)
	if isEmptyPatch(patch) {
		return Settings{}, fmt.Errorf("sepm: PATCH %s: the patch sets no field", path)
	}
	body, err := json.Marshal(Settings{Configuration: patch})
	if err != nil {
		return Settings{}, fmt.Errorf("sepm: PATCH %s: encode body: %w", path, err)
	}
	patchErr := c.do(ctx, call{method: http.MethodPatch, path: path, body: body, auth: true})
	if patchErr != nil && !retryable(ctx, patchErr) {
		return Settings{}, patchErr // refused (4xx), untrusted, or the caller gave up
	}
	got, err := c.LocationSettings(ctx, groupID, locationID)
	if err != nil {
		if patchErr != nil {
			return Settings{}, fmt.Errorf("%w; reading back failed too: %w", patchErr, err)
		}
		return Settings{}, fmt.Errorf("sepm: PATCH %s: applied, but reading back failed: %w", path, err)
	}
	na := applied(patch, got.Configuration)
	switch {
	case na == nil:
		if patchErr != nil {
			c.log.Info("sepm: settings change failed in transit but the read-back shows it applied",
				"path", path, "err", patchErr)
		}
		return got, nil
	case patchErr != nil:
		return got, fmt.Errorf("%w; the read-back shows it was not applied: %s is %q, want %q",
			patchErr, na.Field, na.Got, na.Want)
	default:
		return got, na
	}
}
