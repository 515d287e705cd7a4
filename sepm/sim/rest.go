package sim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"sepmbot/sepm"
)

// apiBase is the REST API's path prefix (SEPM's port 8446 serves it).
const apiBase = "/sepm/api/v1/"

// router registers handlers per path pattern and method; a known path with another
// method gets 405, an unknown path 404, both as SEPM error bodies.
type router struct {
	mux    *http.ServeMux
	routes map[string]map[string]http.HandlerFunc
	order  []string
}

func newRouter() *router {
	return &router{mux: http.NewServeMux(), routes: map[string]map[string]http.HandlerFunc{}}
}

func (r *router) handle(method, pattern string, h http.HandlerFunc) {
	if r.routes[pattern] == nil {
		r.routes[pattern] = map[string]http.HandlerFunc{}
		r.order = append(r.order, pattern)
	}
	r.routes[pattern][method] = h
}

func (r *router) handler() http.Handler {
	for _, p := range r.order {
		methods := r.routes[p]
		r.mux.HandleFunc(p, func(w http.ResponseWriter, req *http.Request) {
			if h, ok := methods[req.Method]; ok {
				h(w, req)
				return
			}
			writeError(w, http.StatusMethodNotAllowed, req.Method+" is not supported on this path")
		})
	}
	r.mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "The requested resource was not found.")
	})
	return r.mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, sepm.ErrorBody{ErrorCode: strconv.Itoa(status), AppErrorCode: "", ErrorMessage: msg})
}

// writeErrGone is writeErr for the paths where Broadcom's spec answers 410 (Cannot
// find the specified object) for an unknown group or location.
func writeErrGone(w http.ResponseWriter, err error) {
	if errors.Is(err, errNotFound) {
		var oe *opError
		msg := "Cannot find the specified object."
		if errors.As(err, &oe) {
			msg = oe.msg
		}
		writeError(w, http.StatusGone, msg)
		return
	}
	writeErr(w, err)
}

// writeErr answers a model error with its status; the message never carries secrets.
func writeErr(w http.ResponseWriter, err error) {
	var oe *opError
	if errors.As(err, &oe) {
		writeError(w, statusOf(err), oe.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "The web service encountered an error while processing the web request.")
}

// apiHandler serves the REST API under /sepm/api/v1 and the admin API under /sim/v1.
func (s *Site) apiHandler() http.Handler {
	r := newRouter()
	p := apiBase
	r.handle(http.MethodPost, p+"identity/authenticate", s.handleAuthenticate)
	r.handle(http.MethodPost, p+"identity/logout", s.auth(s.handleLogout))
	r.handle(http.MethodGet, p+"version", s.handleVersion)
	r.handle(http.MethodGet, p+"groups", s.auth(s.handleGroups))
	r.handle(http.MethodGet, p+"groups/{id}", s.auth(s.handleGroup))
	r.handle(http.MethodGet, p+"groups/{id}/computers", s.auth(s.handleComputers))
	r.handle(http.MethodGet, p+"groups/{id}/locations", s.auth(s.handleLocations))
	r.handle(http.MethodGet, p+"groups/{id}/locations/{loc}/settings", s.auth(s.handleGetSettings))
	r.handle(http.MethodPatch, p+"groups/{id}/locations/{loc}/settings", s.auth(s.handlePatchSettings))
	r.handle(http.MethodGet, p+"computers", s.auth(s.handleComputers))
	r.handle(http.MethodGet, p+"stats/client/version", s.auth(s.handleClientVersions))
	r.handle(http.MethodGet, p+"stats/client/onlinestatus", s.auth(s.handleOnlineStatus))
	r.handle(http.MethodGet, p+"admin/servers", s.auth(s.handleAdminServers))
	r.handle(http.MethodGet, p+"replication/status", s.auth(s.handleReplicationStatus))
	r.handle(http.MethodGet, p+"replication/is_replicated", s.auth(s.handleIsReplicated))
	r.handle(http.MethodPost, p+"replication/replicatenow", s.auth(s.handleReplicateNow))
	r.handle(http.MethodGet, p+"sessions/currentuser", s.auth(s.handleCurrentUser))
	r.handle(http.MethodGet, p+"domains", s.auth(s.handleDomains))
	r.handle(http.MethodGet, p+"groups/{id}/locations/{loc}/policies", s.auth(s.handlePolicies))
	s.adminRoutes(r)
	return s.logged(s.withFaults(s.durable(r.handler())))
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// logged logs each request at debug level: method, path (no query, no headers) and status.
func (s *Site) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		s.log.Debug("sim: request", "method", r.Method, "path", r.URL.Path, "status", sw.status)
	})
}

// discardWriter swallows a reply (a fault injected after the change was applied).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// withFaults injects latency and 5xx replies into REST calls (not identity calls,
// not the admin API).
func (s *Site) withFaults(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, apiBase) || strings.HasPrefix(r.URL.Path, apiBase+"identity/") {
			h.ServeHTTP(w, r)
			return
		}
		f := s.currentFaults()
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-r.Context().Done():
				// The client gave up: drop the connection without a reply. Returning
				// would send an empty 200, which can still reach a client that is
				// closing the connection (its TLS close_notify goes out first), and
				// that client would take it for an answer.
				t.Stop()
				panic(http.ErrAbortHandler)
			case <-t.C:
			}
		}
		if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
			if r.Method != http.MethodGet && rand.IntN(2) == 0 {
				h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
			}
			writeError(w, http.StatusInternalServerError, "The web service encountered an error while processing the web request. (injected)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// auth requires a live Bearer token.
func (s *Site) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok || !s.tokens.valid(tok, time.Now()) {
			writeError(w, http.StatusUnauthorized, "The user that is currently logged on has insufficient rights to execute the web method, or the user is unauthorized.")
			return
		}
		h(w, r)
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *Site) handleAuthenticate(w http.ResponseWriter, r *http.Request) {
	var req sepm.AuthRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The parameters are invalid.")
		return
	}
	userOK := subtle.ConstantTimeCompare([]byte(req.Username), []byte(s.opts.User)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(req.Password), []byte(s.opts.Password)) == 1
	domainOK := req.Domain == "" || strings.EqualFold(req.Domain, domainName)
	if !userOK || !passOK || !domainOK {
		s.log.Info("sim: login refused", "user", req.Username)
		writeError(w, http.StatusUnauthorized, "Invalid user name or password.")
		return
	}
	now := time.Now()
	ttl := s.opts.TokenTTL
	writeJSON(w, http.StatusOK, s.userToken(s.tokens.issue(ttl, now), ttl, now))
}

// userToken is the reply of identity/authenticate (schema identity_UserToken).
func (s *Site) userToken(tok string, ttl time.Duration, now time.Time) wIdentityUserToken {
	m := s.model()
	u := newWIdentityUserToken()
	u.Username = s.opts.User
	u.GetfullName = s.opts.User
	u.Domain = domainName
	u.Domainid = m.domainID
	u.Token = tok
	u.TokenExpiration = int64(ttl / time.Second)
	u.RefreshToken = newToken()
	u.RefreshTokenExpiration = int64(2 * ttl / time.Second)
	u.AdminId = m.adminID
	u.Role = systemAdminRole
	u.PermissionSet = wIdentityUserPermission{GroupRights: true, PolicyRights: true, RemoteCommandRights: true, ReportingRights: true, SiteRights: true}
	u.ServerTime = now.UnixMilli()
	return u
}

// systemAdminRole is the role of the simulated REST user.
var systemAdminRole = wUserRole{BitMask: 1, Title: "SYSADMIN"}

func (s *Site) handleLogout(w http.ResponseWriter, r *http.Request) {
	if tok, ok := bearer(r); ok {
		s.tokens.revoke(tok)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Site) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.model().apiVersion())
}

func (s *Site) handleGroups(w http.ResponseWriter, r *http.Request) {
	page, err := s.model().groupsQuery(r.URL.Query())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Site) handleGroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.model().groupView(r.PathValue("id"))
	if err != nil {
		writeErrGone(w, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Site) handleLocations(w http.ResponseWriter, r *http.Request) {
	hasName, _ := strconv.ParseBool(r.URL.Query().Get("hasName"))
	locs, err := s.model().locations(r.PathValue("id"), hasName)
	if err != nil {
		writeErrGone(w, err)
		return
	}
	writeJSON(w, http.StatusOK, locs)
}

func (s *Site) handleGetSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.model().locationSettings(r.PathValue("id"), r.PathValue("loc"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Site) handlePatchSettings(w http.ResponseWriter, r *http.Request) {
	var body sepm.Settings
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "The parameters are invalid: the body is not a settings object.")
		return
	}
	if err := s.model().patchSettings(r.PathValue("id"), r.PathValue("loc"), body.Configuration); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Site) handleComputers(w http.ResponseWriter, r *http.Request) {
	q, err := parseComputerQuery(r.URL.Query())
	if err != nil {
		writeErr(w, err)
		return
	}
	m := s.model()
	page, err := m.computersPage(q, r.PathValue("id"))
	if err != nil {
		writeErrGone(w, err)
		return
	}
	m.writeComputerPage(w, page)
}

func (s *Site) handleClientVersions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.model().clientVersions())
}

func (s *Site) handleOnlineStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.model().onlineStatus())
}

func (s *Site) handleAdminServers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.model().adminServers())
}

func (s *Site) handleReplicationStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.model().replicationStatus())
}

func (s *Site) handleIsReplicated(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, false)
}

// handleCurrentUser answers GET sessions/currentuser: the session of the token
// (schema administrators_UserToken; the token itself is not echoed back).
func (s *Site) handleCurrentUser(w http.ResponseWriter, r *http.Request) {
	m := s.model()
	u := newWAdministratorsUserToken()
	u.Username = s.opts.User
	u.Fullname = s.opts.User
	u.Domain = domainName
	u.Domainid = m.domainID
	u.AdminId = m.adminID
	u.Role = systemAdminRole
	u.PermissionSet = wAdministratorsUserPermission{GroupRights: true, PolicyRights: true, RemoteCommandRights: true, ReportingRights: true, SiteRights: true}
	u.ServerTime = time.Now().UnixMilli()
	if tok, ok := bearer(r); ok {
		u.Token = tok
		if exp, ok := s.tokens.expiry(tok); ok {
			u.TokenExpiration = int64(time.Until(exp) / time.Second)
		}
	}
	writeJSON(w, http.StatusOK, u)
}

// handleDomains answers GET domains: the one domain (schema Domain).
func (s *Site) handleDomains(w http.ResponseWriter, _ *http.Request) {
	m := s.model()
	d := newWDomain()
	d.Id = m.domainID
	d.Name = domainName
	d.Description = ""
	d.CompanyName = rootName
	d.CreatedTime = m.created
	d.Enable = true
	d.AdministratorCount = 1
	writeJSON(w, http.StatusOK, []wDomain{d})
}

// handleReplicateNow answers POST replication/replicatenow. The site has no
// replication partner (GET replication/status lists none), so every partner name
// is unknown: 400, as SEPM refuses a partner it does not have; the three query
// parameters are required.
func (s *Site) handleReplicateNow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, p := range []string{"partnerSiteName", "content", "logs"} {
		if q.Get(p) == "" {
			writeError(w, http.StatusBadRequest, "The parameters are invalid: "+p+" is required.")
			return
		}
	}
	for _, p := range []string{"content", "logs"} {
		if _, err := strconv.ParseBool(q.Get(p)); err != nil {
			writeError(w, http.StatusBadRequest, "The parameters are invalid: "+p+" must be true or false.")
			return
		}
	}
	writeError(w, http.StatusBadRequest, "The parameters are invalid: no replication partner "+strconv.Quote(q.Get("partnerSiteName"))+".")
}

// policyRef is one entry of GET groups/{g}/locations/{l}/policies (the spec
// declares free-form objects): the policies a location uses, by type.
type policyRef struct {
	PolicyType string `json:"policyType"`
	Name       string `json:"name"`
	Inherited  bool   `json:"inherited"`
}

// handlePolicies answers GET groups/{g}/locations/{l}/policies (read-only).
func (s *Site) handlePolicies(w http.ResponseWriter, r *http.Request) {
	inherited, err := s.model().locationPolicies(r.PathValue("id"), r.PathValue("loc"))
	if err != nil {
		writeErrGone(w, err)
		return
	}
	out := make([]policyRef, 0, len(policyTypes))
	for _, p := range policyTypes {
		out = append(out, policyRef{PolicyType: p.typ, Name: p.name, Inherited: inherited})
	}
	writeJSON(w, http.StatusOK, out)
}

var policyTypes = []struct{ typ, name string }{
	{"av", "Virus and Spyware Protection policy"},
	{"fw", "Firewall policy"},
	{"ips", "Intrusion Prevention policy"},
	{"lu", "LiveUpdate Settings policy"},
	{"exceptions", "Exceptions policy"},
}
