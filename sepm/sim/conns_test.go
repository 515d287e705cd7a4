package sim

import (
	"crypto/tls"
	"net/http"
	"testing"
)

// TestConnectionsCountsAcceptedConnections: requests over one keep-alive
// connection add one connection and one handshake; a client that does not reuse
// its connection adds one of each per request.
func TestConnectionsCountsAcceptedConnections(t *testing.T) {
	s := startSite(t, Options{Clients: 50})
	if s.Connections() != 0 || s.Handshakes() != 0 {
		t.Fatalf("before any client: %d connections, %d handshakes", s.Connections(), s.Handshakes())
	}
	c := rawClient(s)
	tok := rawLogin(t, s, c)
	for range 5 {
		if st, b := rawDo(t, c, http.MethodGet, s.URL()+"/sepm/api/v1/computers?pageSize=10", tok, nil); st != http.StatusOK {
			t.Fatalf("computers: %d %s", st, b)
		}
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("one keep-alive client, 6 requests: %d connections, want 1", got)
	}
	if got := s.Handshakes(); got != 1 {
		t.Errorf("one keep-alive client, 6 requests: %d handshakes, want 1", got)
	}

	// No keep-alive: every request is a new connection and a new handshake.
	nc := rawClient(s)
	tr := nc.Transport.(*http.Transport)
	tr.DisableKeepAlives = true
	tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4) // resumed handshakes count too
	for range 3 {
		if st, b := rawDo(t, nc, http.MethodGet, s.URL()+"/sepm/api/v1/computers?pageSize=10", tok, nil); st != http.StatusOK {
			t.Fatalf("computers: %d %s", st, b)
		}
	}
	if got := s.Connections(); got != 4 {
		t.Errorf("after 3 requests without keep-alive: %d connections, want 4", got)
	}
	if got := s.Handshakes(); got != 4 {
		t.Errorf("after 3 requests without keep-alive: %d handshakes, want 4", got)
	}

	// A reset keeps the listener and the counts.
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if got := s.Connections(); got != 4 {
		t.Errorf("after Reset: %d connections, want 4 (counts survive)", got)
	}
}
