package sim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Site is a running simulated SEPM site: the model, the API listener, one TLS
// listener per server, and the heartbeat scheduler.
type Site struct {
	mp     atomic.Pointer[model] // replaced by Reset
	opts   Options
	log    *slog.Logger
	apiURL string
	api    *http.Server
	srvs   []*http.Server // per server, its client port

	tokens tokenStore

	faultMu sync.Mutex
	faults  Faults

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	state    *stateFile // nil without Options.StateFile
	restored bool       // the site continues a state file
	saveMu   sync.Mutex
	lastSnap *snapshot // the last snapshot saved (guarded by saveMu), reused by the next

	schedMu     sync.Mutex // serialises Reset
	schedCancel context.CancelFunc
	schedDone   chan struct{}

	apiConns      atomic.Int64 // TCP connections accepted on the API listener
	apiHandshakes atomic.Int64 // TLS handshakes completed on the API listener
}

// model is the site's current model.
func (s *Site) model() *model { return s.mp.Load() }

// Start builds the site from opts and starts its listeners and its clients. The site
// runs until Close is called or ctx is done.
func Start(ctx context.Context, opts Options) (*Site, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newModel(opts, time.Now)
	if err != nil {
		return nil, err
	}
	s := &Site{opts: opts, log: opts.Logger, tokens: tokenStore{tokens: map[string]time.Time{}}}
	if opts.StateFile != "" {
		if s.state, err = openState(opts.StateFile); err != nil {
			return nil, err
		}
		sn, err := s.state.load()
		if err == nil && sn != nil {
			m.mu.Lock()
			err = m.restoreLocked(sn)
			m.mu.Unlock()
			if err == nil {
				s.restored = true
				opts.Logger.Info("sim: site restored from the state file", "file", opts.StateFile, "saved", time.Unix(0, sn.SavedAt).UTC().Format(time.RFC3339))
			}
		}
		if err != nil {
			_ = s.state.close()
			return nil, err
		}
	}
	s.mp.Store(m)
	ctx, s.cancel = context.WithCancel(ctx)
	s.ctx = ctx

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		s.cancel()
		s.closeState()
		return nil, fmt.Errorf("sim: listen on %s: %w", opts.Listen, err)
	}
	s.apiURL = "https://" + ln.Addr().String()
	s.api = s.newHTTPServer(s.apiHandler(), 0)
	s.countAPI()
	var listeners []net.Listener
	for i, srv := range m.servers {
		addr := "127.0.0.1:0"
		if srv.clientAddr != "" {
			addr = srv.clientAddr // where it listened before (the state file)
		}
		if i < len(opts.ServerListen) && opts.ServerListen[i] != "" {
			addr = opts.ServerListen[i]
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			_ = ln.Close()
			for _, o := range listeners {
				_ = o.Close()
			}
			s.cancel()
			s.closeState()
			return nil, fmt.Errorf("sim: listen for %s: %w", srv.name, err)
		}
		srv.clientAddr = l.Addr().String()
		listeners = append(listeners, l)
		s.srvs = append(s.srvs, s.newHTTPServer(clientPortHandler(srv.name), i))
	}
	if err := s.saveState(); err != nil { // the new site, with its addresses
		_ = ln.Close()
		for _, o := range listeners {
			_ = o.Close()
		}
		s.cancel()
		s.closeState()
		return nil, err
	}
	serve := func(h *http.Server, l net.Listener) {
		defer s.wg.Done()
		if err := h.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sim: listener stopped", "addr", l.Addr().String(), "err", err)
		}
	}
	s.wg.Add(1 + len(listeners))
	go serve(s.api, ln)
	for i, l := range listeners {
		go serve(s.srvs[i], l)
	}
	s.startScheduler(m)
	if s.state != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runSaver(ctx.Done(), opts.StateInterval)
		}()
	}
	go func() {
		<-ctx.Done()
		_ = s.shutdown()
	}()
	s.log.Info("sim: site started", "url", s.apiURL, "clients", opts.Clients, "servers", opts.Servers,
		"groups", opts.Groups, "heartbeat", opts.Heartbeat.String())
	return s, nil
}

// startScheduler runs m's heartbeats until the site closes or Reset replaces m.
func (s *Site) startScheduler(m *model) {
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.schedCancel, s.schedDone = cancel, done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		m.runScheduler(ctx)
	}()
}

// Reset restarts the site fresh with its state lost, on the same listeners: the
// fleet, settings, lists and certificates are those a new start with the same
// options makes (the seed's), every token is void, and open connections are
// dropped, as when SEPM is restored from an old backup or the simulator is
// restarted without its state. The admin API's POST /sim/v1/restart does this.
func (s *Site) Reset() error {
	s.schedMu.Lock()
	defer s.schedMu.Unlock()
	old := s.model()
	m, err := newModel(s.opts, time.Now)
	if err != nil {
		return err
	}
	for i, srv := range m.servers {
		srv.clientAddr = old.servers[i].clientAddr
	}
	s.schedCancel()
	<-s.schedDone
	s.mp.Store(m)
	s.startScheduler(m)
	s.tokens.expireAll()
	s.dropConnections(-1)
	s.log.Info("sim: site restarted fresh, state lost", "url", s.apiURL)
	return s.saveState()
}

// dropConnections closes idle keep-alive connections of server i's listeners (the
// API's too for server 0), or of every listener for i < 0, so that new requests
// meet what the site presents now.
func (s *Site) dropConnections(i int) {
	for j, h := range s.srvs {
		if i < 0 || i == j {
			h.SetKeepAlivesEnabled(false)
			h.SetKeepAlivesEnabled(true)
		}
	}
	if i <= 0 {
		s.api.SetKeepAlivesEnabled(false)
		s.api.SetKeepAlivesEnabled(true)
	}
}

// newHTTPServer makes a TLS server that presents server i's current certificate.
func (s *Site) newHTTPServer(h http.Handler, i int) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.model().servers[i].cur.Load().tls, nil
			},
		},
	}
}

// countAPI counts the API listener's accepted connections and completed TLS
// handshakes (full or resumed) for Connections and Handshakes.
func (s *Site) countAPI() {
	s.api.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.apiConns.Add(1)
		}
	}
	s.api.TLSConfig.VerifyConnection = func(tls.ConnectionState) error {
		s.apiHandshakes.Add(1)
		return nil
	}
}

// Connections is the number of TCP connections the API listener (standing for
// port 8446) has accepted since Start, Reset included (a reset keeps the
// listener). A client that reuses one keep-alive connection for a whole sweep adds
// one; a client that drops the connection after every page adds one per page.
func (s *Site) Connections() int64 { return s.apiConns.Load() }

// Handshakes is the number of TLS handshakes completed on the API listener since
// Start, full or resumed (session tickets), Reset included. It differs from
// Connections only by connections that never finished their handshake.
func (s *Site) Handshakes() int64 { return s.apiHandshakes.Load() }

// clientPortHandler answers on a server's client port; only the TLS handshake
// matters there.
func clientPortHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "simulated SEPM client port of "+name+"\n")
	})
}

// URL is the API's base URL, "https://127.0.0.1:PORT" (it stands for port 8446).
func (s *Site) URL() string { return s.apiURL }

// User is the REST user name.
func (s *Site) User() string { return s.opts.User }

// APIFingerprint is the fingerprint of the certificate the API presents now (server 1's).
func (s *Site) APIFingerprint() string { return s.model().servers[0].cur.Load().fp }

// Servers describes every server of the site.
func (s *Site) Servers() []ServerInfo { return s.model().serverInfos() }

// MSLs lists the management server lists.
func (s *Site) MSLs() []MSLInfo { return s.model().mslInfos() }

// CopyMSLAsHTTP copies MSL source with every server switched to HTTP on port (0 =
// 8014) as "<source> (HTTP <port>)" and returns the copy's name (steps 2-4).
func (s *Site) CopyMSLAsHTTP(source string, port int) (string, error) {
	return s.model().copyMSLAsHTTP(source, port)
}

// AssignMSL assigns an MSL to group/locations (step 5); no targets means every
// location of every non-inheriting group (the root included).
func (s *Site) AssignMSL(msl string, targets []Target) error {
	return s.model().assignMSL(msl, targets)
}

// ReplaceMSL assigns MSL msl wherever MSL old is assigned and returns how many
// group/locations changed.
func (s *Site) ReplaceMSL(msl, old string) (int, error) {
	return s.model().replaceMSL(msl, old)
}

// UpdateCertificate installs server's pre-generated next certificate (server by
// name or id), makes a new next one, and returns the server as it is now.
func (s *Site) UpdateCertificate(server string) (ServerInfo, error) {
	return s.updateCertificate(server, false)
}

// InstallUnexpectedCertificate installs on server a certificate nobody announced
// (not its next one, which stays planned), as a colleague importing another
// keystore would, and returns the server as it is now.
func (s *Site) InstallUnexpectedCertificate(server string) (ServerInfo, error) {
	return s.updateCertificate(server, true)
}

func (s *Site) updateCertificate(server string, unexpected bool) (ServerInfo, error) {
	m := s.model()
	info, err := m.updateCertificate(server, unexpected)
	if err != nil {
		return info, err
	}
	// A real server restarts its services after the update: drop idle connections
	// so that every new request sees the new certificate.
	for i, srv := range m.servers {
		if srv.name == info.Name {
			s.dropConnections(i)
		}
	}
	return info, nil
}

// BlockClients cuts clients off the manager (blocked) or lets them through again:
// the given unique ids, or n clients (a seeded choice among those checking in when
// blocking, among the blocked when unblocking). It returns their unique ids.
func (s *Site) BlockClients(ids []string, n int, blocked bool) ([]string, error) {
	return s.model().blockClients(ids, n, blocked)
}

// ChangeInConsole changes a location's settings out of band, as a colleague in
// the SEPM console would (not counted among the REST PATCHes).
func (s *Site) ChangeInConsole(c ConsoleChange) error {
	return s.model().consoleChange(c)
}

// SetOnline takes n clients (a seeded choice among those in the other state) online
// or offline for d (0 = until changed) and returns their unique ids.
func (s *Site) SetOnline(n int, online bool, d time.Duration) ([]string, error) {
	return s.model().setOnline(n, online, d)
}

// SetClientsOnline takes the given clients (unique ids) online or offline.
func (s *Site) SetClientsOnline(ids []string, online bool) error {
	return s.model().setClientsOnline(ids, online)
}

// SetFaults sets the faults injected into the REST API; ExpireTokens invalidates
// every token now.
func (s *Site) SetFaults(f Faults) {
	if f.ErrorRate < 0 {
		f.ErrorRate = 0
	}
	if f.ErrorRate > 1 {
		f.ErrorRate = 1
	}
	if f.ExpireTokens {
		s.tokens.expireAll()
		s.log.Info("sim: every token expired")
	}
	f.ExpireTokens = false
	s.faultMu.Lock()
	s.faults = f
	s.faultMu.Unlock()
}

func (s *Site) currentFaults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// Fleet reports the truth about the fleet.
func (s *Site) Fleet() FleetReport { return s.model().fleet() }

// Close stops the site: listeners, connections and the scheduler.
func (s *Site) Close() error {
	s.cancel()
	return s.shutdown()
}

func (s *Site) shutdown() error {
	var err error
	s.closeOnce.Do(func() {
		errs := []error{s.api.Close()}
		for _, h := range s.srvs {
			errs = append(errs, h.Close())
		}
		s.wg.Wait()
		if s.state != nil {
			errs = append(errs, s.saveState())
			s.closeState()
		}
		err = errors.Join(errs...)
		s.log.Info("sim: site stopped", "url", s.apiURL)
	})
	return err
}

func (s *Site) closeState() {
	if s.state != nil {
		if err := s.state.close(); err != nil {
			s.log.Error("sim: closing the state file", "err", err)
		}
	}
}

// tokenStore holds the live REST tokens and their expiry.
type tokenStore struct {
	mu     sync.Mutex
	tokens map[string]time.Time
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (t *tokenStore) issue(ttl time.Duration, now time.Time) string {
	tok := newToken()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, exp := range t.tokens {
		if !now.Before(exp) {
			delete(t.tokens, k)
		}
	}
	t.tokens[tok] = now.Add(ttl)
	return tok
}

func (t *tokenStore) valid(tok string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.tokens[tok]
	return ok && now.Before(exp)
}

func (t *tokenStore) expiry(tok string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.tokens[tok]
	return exp, ok
}

func (t *tokenStore) revoke(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tokens, tok)
}

func (t *tokenStore) expireAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.tokens)
}
