package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"sepmbot/sepm"
)

// API is a plain HTTPS client of one SEPM (or simulator) API: one connection,
// pinned to the API certificate's SHA-256, a token from POST identity/authenticate.
// It is what the bench's operator actions (the simulator's admin API) use; the
// bot's own traffic, and the sweep floor (sepm.Client.SweepFloor), go through
// *sepm.Client.
type API struct {
	base  string // https://host:port
	user  string
	pass  string
	hc    *http.Client
	token string
}

// NewAPI returns a client of base ("https://127.0.0.1:8446") that trusts only the
// certificate with SHA-256 fingerprint fp, over at most one connection.
func NewAPI(base, fp, user, password string) (*API, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bench: API address %q: %w", base, err)
	}
	tc, err := sepm.PinnedTLSConfig(u.Hostname(), fp)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: nil, MaxConnsPerHost: 1, TLSClientConfig: tc}
	return &API{base: strings.TrimRight(base, "/"), user: user, pass: password, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}, nil
}

// Close drops the idle connection.
func (a *API) Close() { a.hc.CloseIdleConnections() }

// Login gets a token (POST /sepm/api/v1/identity/authenticate).
func (a *API) Login(ctx context.Context) error {
	var ar sepm.AuthResponse
	if err := a.Do(ctx, http.MethodPost, "/sepm/api/v1/identity/authenticate", sepm.AuthRequest{Username: a.user, Password: a.pass}, &ar); err != nil {
		return err
	}
	if ar.Token == "" {
		return errors.New("bench: log-in reply carries no token")
	}
	a.token = ar.Token
	return nil
}

// Do sends a JSON request to path and decodes the reply into out (nil: discarded).
func (a *API) Do(ctx context.Context, method, path string, body, out any) error {
	var buf bytes.Buffer
	if _, err := a.raw(ctx, method, path, body, &buf); err != nil {
		return err
	}
	if out == nil || buf.Len() == 0 {
		return nil
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return fmt.Errorf("bench: %s %s: decoding the reply: %w", method, path, err)
	}
	return nil
}

// raw sends the request and reads the whole reply body into dst (reset first).
func (a *API) raw(ctx context.Context, method, path string, body any, dst *bytes.Buffer) (int64, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("bench: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	dst.Reset()
	n, err := dst.ReadFrom(resp.Body)
	if err != nil {
		return n, fmt.Errorf("bench: %s %s: reading the reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return n, fmt.Errorf("bench: %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(dst.Bytes()[:min(dst.Len(), 300)])))
	}
	return n, nil
}
