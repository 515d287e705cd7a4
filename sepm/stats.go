package sepm

import (
	"sync/atomic"
)

// Stats are a Client's counters since New, for benchmarks and metrics. Reading them
// is cheap and safe while calls run; each field is read atomically on its own, so a
// snapshot taken during a call may be a few bytes or one request apart.
type Stats struct {
	// Requests counts HTTP attempts sent: every retry, log-in and re-login is one.
	Requests int64
	// Connections counts new connections to SEPM: each completed TLS handshake of
	// the client's own dialler. A request on a kept-alive connection adds nothing,
	// and a dial that failed (refused, untrusted certificate) is not counted.
	Connections int64
	// BodyBytes counts reply body bytes read (2xx and error replies, after any
	// chunked transfer decoding; headers and TLS framing not included).
	BodyBytes int64
}

// Sub returns s minus an earlier snapshot o: the counts of what happened between them.
func (s Stats) Sub(o Stats) Stats {
	return Stats{Requests: s.Requests - o.Requests, Connections: s.Connections - o.Connections, BodyBytes: s.BodyBytes - o.BodyBytes}
}

// counters are the atomic fields behind Stats.
type counters struct {
	requests, connections, bodyBytes atomic.Int64
}

// Stats returns the client's counters (see Stats).
func (c *Client) Stats() Stats {
	return Stats{
		Requests:    c.stats.requests.Load(),
		Connections: c.stats.connections.Load(),
		BodyBytes:   c.stats.bodyBytes.Load(),
	}
}
