package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// AdminAPI is the base path of the simulator's admin API. It does what an operator
// does in the SEPM console (which the REST API cannot) and reports the truth about the
// fleet. It is served on the same listener as the REST API and needs the same Bearer
// token (POST /sepm/api/v1/identity/authenticate). Bodies and replies are JSON;
// errors are SEPM error bodies {"errorCode","appErrorCode","errorMessage"}. Faults
// are never injected here.
//
//	GET  /sim/v1/servers
//	     -> [{"name","id","clientAddr","httpPort","fingerprint","nextFingerprint","subject","notAfter"}]
//	     every server: its client-port listener (stands for 443), the SHA-256 of the
//	     certificate it presents now and of the one its next update installs.
//	GET  /sim/v1/msls
//	     -> [{"name","servers":[{"server","protocol":"HTTPS"|"HTTP","port","priority"}]}]
//	POST /sim/v1/msls/copy     {"source":NAME,"port":8014}
//	     -> {"name":"NAME (HTTP 8014)"}   steps 2-4: the HTTP copy (port 0 or absent = 8014);
//	     copying again returns the same copy.
//	POST /sim/v1/msls/assign   {"msl":NAME,"replace":OLDNAME}
//	     -> {"msl":NAME,"changed":N}      every group/location whose sem_server is OLDNAME
//	POST /sim/v1/msls/assign   {"msl":NAME,"targets":[{"groupId":G,"locationId":L}]}
//	     -> {"msl":NAME,"changed":N}      the given group/locations (no locationId = all of
//	     the group's locations; no targets = every location of every non-inheriting group)
//	POST /sim/v1/servers/{name}/certificate   (no body, or {"unexpected":true})
//	     -> ServerInfo after the update   installs the pre-generated next certificate;
//	     with unexpected, a certificate nobody announced (the next one stays planned)
//	POST /sim/v1/clients/online {"count":N,"online":false,"seconds":S}
//	     -> {"ids":[...]}                  N clients (seeded choice) go offline (or online)
//	     for S seconds (0 or absent = until changed)
//	POST /sim/v1/clients/online {"ids":[...],"online":true}
//	     -> {"ids":[...]}                  the given clients (unique ids) go online (or offline)
//	POST /sim/v1/clients/block {"count":N,"blocked":true}  or {"ids":[...],"blocked":false}
//	     -> {"ids":[...]}                  the clients cannot reach the manager (SEPM shows
//	     them offline; they do not check in) until unblocked; N = a seeded choice among
//	     those checking in (blocking) or the blocked (unblocking)
//	POST /sim/v1/settings {"groupId":G,"locationId":L,"secureCommunications":true,"msl":NAME}
//	     -> 204                            a colleague's change in the console (locationId
//	     absent = every location of G; either field may be absent); a new policy serial,
//	     not counted among the PATCHes
//	POST /sim/v1/restart
//	     -> 204                            the site restarts fresh, state lost (the seed's
//	     fleet, settings and certificates; every token void), on the same ports
//	POST /sim/v1/faults        {"errorRate":0.2,"latencyMs":0,"expireTokens":true}
//	     -> {"errorRate","latencyMs"}      REST faults from now on (every field set, absent = 0);
//	     expireTokens invalidates every token at once (this one too)
//	GET  /sim/v1/fleet
//	     -> {"total","ok","orphaned","offline","pending",
//	         "byServer":{NAME:{"fingerprint","clientsCurrent","clientsStale"}},
//	         "byGroup":{PATH:{"ok","orphaned","offline"}},
//	         "orphanedClients":[{"uniqueId","computerName","group","agentVersion"}],
//	         "blocked","away","checkins","fetchFailures","absences",
//	         "patches":[{"groupId","locationId","group","location","count",
//	                     "fields":{FIELD:{"sent","changed"}}}]}
//	     each client is exactly one of ok, orphaned, offline (orphaned wins); pending
//	     counts ok clients not yet on their group's current policy serial; blocked and
//	     away (roamers) are part of offline; patches counts the accepted REST PATCHes
//	     per group/location and per field (FIELD e.g.
//	     "general_settings.security_settings.secure_communications",
//	     "communication_settings.sem_server").
const AdminAPI = "/sim/v1"

type copyRequest struct {
	Source string `json:"source"`
	Port   int    `json:"port"`
}

type assignRequest struct {
	MSL     string   `json:"msl"`
	Replace string   `json:"replace,omitempty"`
	Targets []Target `json:"targets,omitempty"`
}

type assignReply struct {
	MSL     string `json:"msl"`
	Changed int    `json:"changed"`
}

type onlineRequest struct {
	Count   int      `json:"count"`
	Online  *bool    `json:"online"`
	Seconds float64  `json:"seconds"`
	IDs     []string `json:"ids"`
}

type blockRequest struct {
	Count   int      `json:"count"`
	Blocked *bool    `json:"blocked"`
	IDs     []string `json:"ids"`
}

type certRequest struct {
	Unexpected bool `json:"unexpected"`
}

// readOptionalJSON is readJSON for a body that may be empty.
func readOptionalJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

type faultsJSON struct {
	ErrorRate    float64 `json:"errorRate"`
	LatencyMs    int64   `json:"latencyMs"`
	ExpireTokens bool    `json:"expireTokens,omitempty"`
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Site) adminRoutes(r *router) {
	p := AdminAPI + "/"
	r.handle(http.MethodGet, p+"servers", s.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Servers())
	}))
	r.handle(http.MethodGet, p+"msls", s.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.MSLs())
	}))
	r.handle(http.MethodPost, p+"msls/copy", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req copyRequest
		if !readJSON(w, r, &req) {
			return
		}
		name, err := s.CopyMSLAsHTTP(req.Source, req.Port)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"name": name})
	}))
	r.handle(http.MethodPost, p+"msls/assign", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req assignRequest
		if !readJSON(w, r, &req) {
			return
		}
		var n int
		var err error
		switch {
		case req.Replace != "" && len(req.Targets) > 0:
			writeError(w, http.StatusBadRequest, "give either replace or targets, not both")
			return
		case req.Replace != "":
			n, err = s.model().replaceMSL(req.MSL, req.Replace)
		default:
			n, err = s.model().assignMSLCount(req.MSL, req.Targets)
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, assignReply{MSL: req.MSL, Changed: n})
	}))
	r.handle(http.MethodPost, p+"servers/{name}/certificate", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req certRequest
		if !readOptionalJSON(w, r, &req) {
			return
		}
		info, err := s.updateCertificate(r.PathValue("name"), req.Unexpected)
		if err != nil {
			writeErr(w, err)
			return
		}
		// The services restart: this connection ends too.
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusOK, info)
	}))
	r.handle(http.MethodPost, p+"clients/online", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req onlineRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.Online == nil {
			writeError(w, http.StatusBadRequest, `"online" is required`)
			return
		}
		if len(req.IDs) > 0 {
			if req.Count != 0 || req.Seconds != 0 {
				writeError(w, http.StatusBadRequest, "give either ids or count (and seconds), not both")
				return
			}
			if err := s.SetClientsOnline(req.IDs, *req.Online); err != nil {
				writeErr(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string][]string{"ids": req.IDs})
			return
		}
		ids, err := s.SetOnline(req.Count, *req.Online, time.Duration(req.Seconds*float64(time.Second)))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"ids": ids})
	}))
	r.handle(http.MethodPost, p+"faults", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req faultsJSON
		if !readJSON(w, r, &req) {
			return
		}
		if req.ErrorRate < 0 || req.ErrorRate > 1 || req.LatencyMs < 0 {
			writeError(w, http.StatusBadRequest, "errorRate must be in 0..1 and latencyMs not negative")
			return
		}
		s.SetFaults(Faults{ErrorRate: req.ErrorRate, Latency: time.Duration(req.LatencyMs) * time.Millisecond, ExpireTokens: req.ExpireTokens})
		f := s.currentFaults()
		writeJSON(w, http.StatusOK, faultsJSON{ErrorRate: f.ErrorRate, LatencyMs: f.Latency.Milliseconds()})
	}))
	r.handle(http.MethodPost, p+"clients/block", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req blockRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.Blocked == nil {
			writeError(w, http.StatusBadRequest, `"blocked" is required`)
			return
		}
		if len(req.IDs) > 0 && req.Count != 0 {
			writeError(w, http.StatusBadRequest, "give either ids or count, not both")
			return
		}
		ids, err := s.BlockClients(req.IDs, req.Count, *req.Blocked)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"ids": ids})
	}))
	r.handle(http.MethodPost, p+"settings", s.auth(func(w http.ResponseWriter, r *http.Request) {
		var req ConsoleChange
		if !readJSON(w, r, &req) {
			return
		}
		if err := s.ChangeInConsole(req); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	r.handle(http.MethodPost, p+"restart", s.auth(func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Reset(); err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNoContent)
	}))
	r.handle(http.MethodGet, p+"fleet", s.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Fleet())
	}))
}
