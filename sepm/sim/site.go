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
	"time"
)

// Site is a running simulated SEPM site: the model, the API listener, one TLS
// listener per server, and the heartbeat scheduler.
type Site struct {
	m      *model
	opts   Options
	log    *slog.Logger
	apiURL string
	api    *http.Server
	srvs   []*http.Server // per server, its client port

	tokens tokenStore

	faultMu sync.Mutex
	faults  Faults

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

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
	s := &Site{m: m, opts: opts, log: opts.Logger, tokens: tokenStore{tokens: map[string]time.Time{}}}
	ctx, s.cancel = context.WithCancel(ctx)

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("sim: listen on %s: %w", opts.Listen, err)
	}
	s.apiURL = "https://" + ln.Addr().String()
	s.api = s.newHTTPServer(s.apiHandler(), m.servers[0])
	var listeners []net.Listener
	for _, srv := range m.servers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			_ = ln.Close()
			for _, o := range listeners {
				_ = o.Close()
			}
			s.cancel()
			return nil, fmt.Errorf("sim: listen for %s: %w", srv.name, err)
		}
		srv.clientAddr = l.Addr().String()
		listeners = append(listeners, l)
		s.srvs = append(s.srvs, s.newHTTPServer(clientPortHandler(srv.name), srv))
	}
	serve := func(h *http.Server, l net.Listener) {
		defer s.wg.Done()
		if err := h.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sim: listener stopped", "addr", l.Addr().String(), "err", err)
		}
	}
	s.wg.Add(2 + len(listeners))
	go serve(s.api, ln)
	for i, l := range listeners {
		go serve(s.srvs[i], l)
	}
	go func() {
		defer s.wg.Done()
		m.runScheduler(ctx)
	}()
	go func() {
		<-ctx.Done()
		_ = s.shutdown()
	}()
	s.log.Info("sim: site started", "url", s.apiURL, "clients", opts.Clients, "servers", opts.Servers,
		"groups", opts.Groups, "heartbeat", opts.Heartbeat.String())
	return s, nil
}

// newHTTPServer makes a TLS server that presents srv's current certificate.
func (s *Site) newHTTPServer(h http.Handler, srv *server) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return srv.cur.Load().tls, nil
			},
		},
	}
}

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
func (s *Site) APIFingerprint() string { return s.m.servers[0].cur.Load().fp }

// Servers describes every server of the site.
func (s *Site) Servers() []ServerInfo { return s.m.serverInfos() }

// MSLs lists the management server lists.
func (s *Site) MSLs() []MSLInfo { return s.m.mslInfos() }

// CopyMSLAsHTTP copies MSL source with every server switched to HTTP on port (0 =
// 8014) as "<source> (HTTP <port>)" and returns the copy's name (seed steps 2-4).
func (s *Site) CopyMSLAsHTTP(source string, port int) (string, error) {
	return s.m.copyMSLAsHTTP(source, port)
}

// AssignMSL assigns an MSL to group/locations (seed step 5); no targets means every
// location of every non-inheriting group (the root included).
func (s *Site) AssignMSL(msl string, targets []Target) error {
	return s.m.assignMSL(msl, targets)
}

// ReplaceMSL assigns MSL msl wherever MSL old is assigned and returns how many
// group/locations changed.
func (s *Site) ReplaceMSL(msl, old string) (int, error) {
	return s.m.replaceMSL(msl, old)
}

// UpdateCertificate installs server's pre-generated next certificate (server by
// name or id), makes a new next one, and returns the server as it is now.
func (s *Site) UpdateCertificate(server string) (ServerInfo, error) {
	info, err := s.m.updateCertificate(server)
	if err != nil {
		return info, err
	}
	// A real server restarts its services after the update: drop idle connections
	// so that every new request sees the new certificate.
	for i, srv := range s.m.servers {
		if srv.name == info.Name {
			s.srvs[i].SetKeepAlivesEnabled(false)
			s.srvs[i].SetKeepAlivesEnabled(true)
			if i == 0 {
				s.api.SetKeepAlivesEnabled(false)
				s.api.SetKeepAlivesEnabled(true)
			}
		}
	}
	return info, nil
}

// SetOnline takes n clients (a seeded choice among those in the other state) online
// or offline for d (0 = until changed) and returns their unique ids.
func (s *Site) SetOnline(n int, online bool, d time.Duration) ([]string, error) {
	return s.m.setOnline(n, online, d)
}

// SetClientsOnline takes the given clients (unique ids) online or offline.
func (s *Site) SetClientsOnline(ids []string, online bool) error {
	return s.m.setClientsOnline(ids, online)
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
func (s *Site) Fleet() FleetReport { return s.m.fleet() }

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
		err = errors.Join(errs...)
		s.log.Info("sim: site stopped", "url", s.apiURL)
	})
	return err
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
