package sepm

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrAuthRejected is what every call returns once SEPM has refused the bot's
// credentials (401 or 403 from POST identity/authenticate). It is not an outage: SEPM
// is up and says no. The client stops at once, without a retry, and from then on
// sends no automatic log-in at all, because a service account locks after a few
// failed logons; only an explicit Login (an operator's resume, a restart) tries again.
// Test for it with errors.Is; its text never carries a password or token.
var ErrAuthRejected = errors.New("sepm: SEPM refused the bot's credentials")

// authRejected is the error of a refused log-in: it matches ErrAuthRejected and
// unwraps to SEPM's *APIError (already redacted).
type authRejected struct {
	api     *APIError
	latched bool // this call sent nothing: an earlier log-in was refused
}

func (e *authRejected) Error() string {
	s := fmt.Sprintf("%s (%s)", ErrAuthRejected, e.api)
	if e.latched {
		return s + "; sepmbot sends no further log-in until an operator resumes or the bot restarts, so the service account does not lock: check the SEPM account (locked, disabled, password changed) first"
	}
	return s + "; sepmbot stopped at once and will not retry, so the service account does not lock: check the SEPM account (locked, disabled, password changed) before trying again"
}

func (e *authRejected) Is(target error) bool { return target == ErrAuthRejected }

// AuthRejected marks the error for callers that test for the behaviour rather than
// the sentinel (errors.As with interface{ AuthRejected() bool }).
func (e *authRejected) AuthRejected() bool { return true }
func (e *authRejected) Unwrap() error      { return e.api }

// refusedLogin reports whether err is SEPM's answer that the credentials are refused.
func refusedLogin(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		return ae, true
	}
	return nil, false
}

// rejection returns the latched refusal, or nil when log-ins may be tried. Caller
// holds loginMu.
func (c *Client) rejection() error {
	if c.rejected == nil {
		return nil
	}
	return &authRejected{api: c.rejected, latched: true}
}
