package sepm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sepmbot/internal/ctxsleep"
)

// Defaults of Config.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 4
	apiPrefix         = "/sepm/api/v1"
	defaultPort       = "8446" // SEPM's API port, when the URL names none
	backoffBase       = 100 * time.Millisecond
	backoffCap        = 5 * time.Second
	renewFloor        = 30 * time.Second // renew a token at least this long before it expires
	maxErrorBody      = 64 << 10
	// maxReplyBody bounds a 2xx reply; a page of 1000 computers is a few MB.
	maxReplyBody = 64 << 20
	// maxTokenLifeSecs caps the tokenExpiration believed (a week; SEPM's is 12 h).
	maxTokenLifeSecs = 7 * 24 * 3600
)

// Config configures a Client.
type Config struct {
	// URL of the SEPM API, e.g. "https://127.0.0.1:8446", with or without the
	// "/sepm/api/v1" suffix. Only https is accepted; the port defaults to 8446.
	URL string
	// Username, Password and Domain are the REST credentials (a system administrator).
	// Domain "" is SEPM's default domain.
	Username, Password, Domain string
	// CAFile is a PEM bundle of CAs to trust for the API (optional).
	CAFile string
	// Fingerprints is the pinned set of SHA-256 leaf fingerprints (hex, colons
	// optional, any case). When set (or after Trust), a server is trusted if its leaf
	// is in the set, or chains to CAFile when one is given.
	Fingerprints []string
	// InsecureSkipVerify turns TLS verification off. Only ever set from the flag
	// --sepm-insecure-skip-verify.
	InsecureSkipVerify bool
	// Timeout bounds each HTTP request (one attempt, body included); default 30 s.
	Timeout time.Duration
	// MaxRetries is how often a GET is retried after a 5xx or a transport error or
	// timeout; default 4, negative for none. Backoff is exponential from 100 ms,
	// capped at 5 s, with jitter.
	MaxRetries int
	// Logger receives Debug records of each request (method, path, status, attempt);
	// never a password, token or body. Default: discard.
	Logger *slog.Logger
}

// Client is a SEPM REST API client. It logs in on first use, renews its token before
// it expires, logs in again once on a 401, retries GETs, and verifies every settings
// change by reading it back. It is safe for concurrent use.
type Client struct {
	cfg        Config
	root       string // scheme://host[:port][/prefix], no trailing slash
	api        string // root + "/sepm/api/v1/"
	hc         *http.Client
	tr         *http.Transport
	trust      *trust
	log        *slog.Logger
	timeout    time.Duration
	maxRetries int

	// Unexported knobs the tests turn.
	backoffBase, backoffCap time.Duration
	now                     func() time.Time

	loginMu sync.Mutex // serializes logins
	mu      sync.Mutex // guards the token fields
	tok     string
	renewAt time.Time // when the token is due for renewal

	// rejected is SEPM's refusal of the credentials, once a log-in got one; while set,
	// no automatic log-in is sent (ErrAuthRejected). Guarded by loginMu.
	rejected *APIError

	fullComputers atomic.Bool // the server's reduced computer records lack what the bot reads (api.go)
	reducedOK     atomic.Bool // a whole sweep's reduced records carried what the bot reads (api.go)

	stats counters // Stats (stats.go)
}

// New checks cfg and builds a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	root, err := apiRoot(cfg.URL)
	if err != nil {
		return nil, err
	}
	tr, err := newTrust(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:         cfg,
		root:        root,
		api:         root + apiPrefix + "/",
		trust:       tr,
		log:         cfg.Logger,
		timeout:     cfg.Timeout,
		maxRetries:  cfg.MaxRetries,
		backoffBase: backoffBase,
		backoffCap:  backoffCap,
		now:         time.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if cfg.InsecureSkipVerify {
		c.log.Warn("sepm: TLS verification of the SEPM API is OFF (--sepm-insecure-skip-verify)", "url", root)
	}
	c.tr = &http.Transport{
		Proxy:          nil, // SEPM is reached directly
		DialTLSContext: c.dialTLS,
		// A sweep is sequential: one connection, handed back to the idle pool after
		// each reply is read to its end (reply.go), carries every page. Concurrent
		// callers get up to 8 idle connections kept.
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // the per-attempt context bounds it
		ExpectContinueTimeout: time.Second,
	}
	c.hc = &http.Client{
		Transport: c.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // never follow a redirect with a token
		},
	}
	return c, nil
}

// dialTLS dials through the trust and counts each connection it establishes.
func (c *Client) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.trust.dialTLS(ctx, network, addr)
	if err == nil {
		c.stats.connections.Add(1)
	}
	return conn, err
}

// apiRoot parses Config.URL into the server root (without the API suffix).
func apiRoot(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("sepm: URL %q: want https://HOST:8446", raw)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("sepm: URL %q: the SEPM API is HTTPS only", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("sepm: URL %q: want only scheme, host, port and path", u.Redacted())
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, apiPrefix)
	return u.Scheme + "://" + host + p, nil
}

// Trust adds fingerprints to the pinned set (for a certificate rotation: old and new
// both trusted). The client switches to pinning if it was not pinning yet. All are
// checked first; on error none is added.
func (c *Client) Trust(fps ...string) error {
	if err := c.trust.add(fps...); err != nil {
		return err
	}
	c.log.Info("sepm: trusting certificate fingerprints", "added", len(fps), "pinned", c.trust.list())
	return nil
}

// Untrust removes a fingerprint from the pinned set and drops idle connections, so
// the next request verifies the server again.
func (c *Client) Untrust(fp string) {
	if c.trust.remove(fp) {
		c.tr.CloseIdleConnections()
		c.log.Info("sepm: no longer trusting a certificate fingerprint", "removed", fp, "pinned", c.trust.list())
	}
}

// CloseIdleConnections closes the kept-alive connections to SEPM that carry no
// request now; the next request dials (and shakes hands) again.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// TrustedFingerprints returns the pinned set, sorted.
func (c *Client) TrustedFingerprints() []string { return c.trust.list() }

// APIError is a non-2xx reply of SEPM.
type APIError struct {
	Method, Path string
	Status       int
	Code         string // errorCode
	AppCode      string // appErrorCode
	Message      string // errorMessage (or the HTTP status text)
}

// ErrNotFound matches (errors.Is) an APIError for an object SEPM does not have:
// Broadcom's spec answers 410 for some paths (groups/{id}, its locations and
// policies) and 404 for others, and SEPM versions differ, so both mean gone.
var ErrNotFound = errors.New("sepm: not found")

// Is reports whether e is a not-found reply (404 or 410) when target is ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && (e.Status == http.StatusNotFound || e.Status == http.StatusGone)
}

// Error implements error: "sepm: GET groups: 400: <errorMessage>".
func (e *APIError) Error() string {
	s := fmt.Sprintf("sepm: %s %s: %d: %s", e.Method, e.Path, e.Status, e.Message)
	if e.AppCode != "" {
		s += " (appErrorCode " + e.AppCode + ")"
	}
	return s
}

// call is one logical API call.
type call struct {
	method, path string
	body         []byte                  // JSON, nil for none
	out          any                     // decoded from a 2xx reply, nil to discard
	decode       func(body []byte) error // decodes a 2xx reply instead of out (the bytes are reused after it returns)
	buf          *bytes.Buffer           // the reply is read into it (a sweep's own); nil: a pooled one
	auth         bool                    // send the Bearer token (and log in again once on a 401)
	retry        bool                    // idempotent: retry on 5xx, transport errors and timeouts
}

// transient marks a failure that may pass on a retry: transport errors, timeouts,
// and replies cut short.
type transient struct{ err error }

func (t *transient) Error() string { return t.err.Error() }
func (t *transient) Unwrap() error { return t.err }

// do runs k: obtains a token, sends, logs in again once on a 401, and retries
// idempotent calls with capped exponential backoff.
func (c *Client) do(ctx context.Context, k call) error {
	relogged := false
	for attempt := 0; ; attempt++ {
		var tok string
		var err error
		if k.auth {
			tok, err = c.token(ctx) // nothing was sent yet: a failed login may be retried
		}
		sent := false
		if err == nil {
			sent = true
			err = c.send(ctx, k, tok)
			var ae *APIError
			if k.auth && !relogged && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
				// The token was refused (expired, revoked): log in again, retry once.
				relogged = true
				c.dropToken(tok)
				c.log.Debug("sepm: token refused, logging in again", "method", k.method, "path", pathOnly(k.path))
				attempt--
				continue
			}
		}
		if err == nil {
			return nil
		}
		if (sent && !k.retry) || attempt >= c.maxRetries || !retryable(ctx, err) {
			return withCause(ctx, k.method, k.path, err)
		}
		if err := c.pause(ctx, attempt, k.method, k.path, err); err != nil {
			return err
		}
	}
}

// pause waits out the backoff before retry attempt+1 of a call that failed with err.
func (c *Client) pause(ctx context.Context, attempt int, method, path string, err error) error {
	d := c.backoff(attempt)
	c.log.Debug("sepm: retrying", "method", method, "path", pathOnly(path), "attempt", attempt+1, "in", d, "err", err)
	if ctxsleep.Sleep(ctx, d) != nil {
		return withCause(ctx, method, path, err)
	}
	return nil
}

// withCause returns err, naming the caller's cancellation or deadline when that is why
// the call stopped: a reply can arrive in the same instant the context ends, and the
// caller must still see context.Canceled rather than only the server's answer.
func withCause(ctx context.Context, method, path string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sepm: %s %s: %w (after: %w)", method, pathOnly(path), cerr, err)
	}
	return err
}

// retryable reports whether a failed attempt may be repeated: not when the caller's
// context is done, not on a TLS trust failure, not on a 4xx.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || isCertError(err) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	var te *transient
	return errors.As(err, &te)
}

// backoff is the wait before retry attempt+1: exponential from backoffBase, capped at
// backoffCap, with the upper half jittered.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffCap
	if attempt < 30 {
		d = min(c.backoffBase<<attempt, c.backoffCap)
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// url resolves a call path: "/x" from the server root, "x" below /sepm/api/v1/.
func (c *Client) url(path string) string {
	if strings.HasPrefix(path, "/") {
		return c.root + path
	}
	return c.api + path
}

// pathOnly strips the query, for messages and logs.
func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

// Do makes an authenticated JSON call: body (nil for none) is encoded, a 2xx reply is
// decoded into out (nil to discard). A path starting with "/" is taken from the server
// root (e.g. the simulator's "/sim/v1/..."), otherwise it is relative to
// /sepm/api/v1/ and may carry a query. GETs are retried on 5xx and transport errors.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	k := call{method: strings.ToUpper(method), path: path, out: out, auth: true}
	k.retry = k.method == http.MethodGet
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("sepm: %s %s: encode body: %w", k.method, pathOnly(path), err)
		}
		k.body = b
	}
	return c.do(ctx, k)
}

// get is an authenticated GET.
func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, call{method: http.MethodGet, path: path, out: out, auth: true, retry: true})
}

// Login logs in now (POST identity/authenticate), replacing any token. Other calls log
// in by themselves when needed; Login is for checking the credentials early, and it is
// the one way to try again after SEPM refused them (ErrAuthRejected): it makes one
// attempt even then. A 5xx or transport failure is retried like a GET (a login changes
// nothing on the server); a refusal is never retried.
func (c *Client) Login(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.rejected = nil
	for attempt := 0; ; attempt++ {
		_, err := c.login(ctx)
		if err == nil {
			return nil
		}
		if attempt >= c.maxRetries || !retryable(ctx, err) {
			return withCause(ctx, http.MethodPost, "identity/authenticate", err)
		}
		if err := c.pause(ctx, attempt, http.MethodPost, "identity/authenticate", err); err != nil {
			return err
		}
	}
}

// login makes one authenticate request and stores the token. Caller holds loginMu.
func (c *Client) login(ctx context.Context) (string, error) {
	if c.cfg.Username == "" {
		return "", errors.New("sepm: log in: no username configured")
	}
	body, err := json.Marshal(AuthRequest{Username: c.cfg.Username, Password: c.cfg.Password, Domain: c.cfg.Domain})
	if err != nil {
		return "", fmt.Errorf("sepm: log in: %w", err)
	}
	var ar AuthResponse
	if err := c.send(ctx, call{method: http.MethodPost, path: "identity/authenticate", body: body, out: &ar}, ""); err != nil {
		if ae, ok := refusedLogin(err); ok {
			c.rejected = ae
			c.log.Warn("sepm: SEPM refused the credentials; no further automatic log-in", "user", c.cfg.Username, "status", ae.Status)
			return "", &authRejected{api: ae}
		}
		return "", err
	}
	if ar.Token == "" {
		return "", errors.New("sepm: POST identity/authenticate: the reply carries no token")
	}
	// Capped before the conversion, so an absurd value cannot overflow into a tiny one.
	life := time.Duration(min(ar.TokenExpiration, maxTokenLifeSecs)) * time.Second
	if life <= 0 {
		life = time.Hour // not stated: assume SEPM's shortest usual session and rely on 401s
	}
	now := c.now()
	c.mu.Lock()
	c.tok = ar.Token
	c.renewAt = now.Add(life - renewMargin(life))
	c.mu.Unlock()
	c.log.Debug("sepm: logged in", "user", c.cfg.Username, "tokenLifetime", life)
	return ar.Token, nil
}

// renewMargin is how long before expiry a token is renewed: 10% of its lifetime, at
// least 30 s, but never more than half of it.
func renewMargin(life time.Duration) time.Duration {
	return min(max(life/10, renewFloor), life/2)
}

// token returns a live token, logging in when there is none or it is due for renewal.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, renewAt := c.tok, c.renewAt
	c.mu.Unlock()
	if tok != "" && c.now().Before(renewAt) {
		return tok, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	tok, renewAt = c.tok, c.renewAt
	c.mu.Unlock()
	if tok != "" && c.now().Before(renewAt) {
		return tok, nil // another caller logged in meanwhile
	}
	if err := c.rejection(); err != nil {
		return "", err // SEPM said no: another failed logon could lock the account
	}
	return c.login(ctx)
}

// dropToken forgets tok if it is still the current token.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	if c.tok == tok {
		c.tok = ""
	}
	c.mu.Unlock()
}

// Logout ends the session (POST identity/logout) and forgets the token. Without a
// session it does nothing; a 401 (session already gone) counts as success.
func (c *Client) Logout(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	tok := c.tok
	c.tok = ""
	c.mu.Unlock()
	if tok == "" {
		return nil
	}
	err := c.send(ctx, call{method: http.MethodPost, path: "identity/logout"}, tok)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return nil
	}
	return err
}

// Version returns the manager's version (GET version, no login needed).
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.do(ctx, call{method: http.MethodGet, path: "version", out: &v, retry: true})
	return v, err
}
