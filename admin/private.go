package admin

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TokenEnv is the environment variable (or TokenEnv_FILE) of the admin token: the
// bearer token /backup and /audit/{id} require when it is set.
const TokenEnv = "SEPMBOT_ADMIN_TOKEN"

// private guards an endpoint that hands out the data file or the audit trail. With
// a token configured, a request must carry it (Authorization: Bearer TOKEN),
// whatever its address. Without one, only a peer on loopback is answered: the
// listener may be bound wider for Prometheus (the container image binds
// 0.0.0.0:9090), and /metrics, /healthz and /readyz stay open, but the monitoring
// network does not get a copy of the data file. Refusals say why, change nothing
// and name no secret.
func (s *Server) private(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sepmbot admin"`)
				http.Error(w, "this endpoint needs the admin token ("+TokenEnv+"): send Authorization: Bearer TOKEN", http.StatusUnauthorized)
				return
			}
			h(w, r)
			return
		}
		if !loopbackPeer(r.RemoteAddr) {
			http.Error(w, "this endpoint answers only on this host (loopback) unless "+TokenEnv+" is set", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// loopbackPeer reports whether a request's RemoteAddr is a loopback address.
func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
