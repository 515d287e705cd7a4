package bench

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP from its loopback address to a target and counts what passes:
// connections accepted, bytes from the target to the client (replies) and from the
// client to the target (requests). TLS passes through untouched, so a pinned client
// pointed at Addr verifies the target's certificate as if it spoke to it directly.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener

	accepts atomic.Int64
	down    atomic.Int64 // target -> client
	up      atomic.Int64 // client -> target

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on 127.0.0.1 (a free port) and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench proxy: listen: %w", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Counts is a snapshot of a proxy's counters.
type Counts struct {
	Accepts   int64 // TCP connections accepted (each a TLS handshake for a TLS client)
	BytesDown int64 // bytes the target sent (replies, TLS records included)
	BytesUp   int64 // bytes the client sent
}

// Sub is c - o, the traffic between two snapshots.
func (c Counts) Sub(o Counts) Counts {
	return Counts{Accepts: c.Accepts - o.Accepts, BytesDown: c.BytesDown - o.BytesDown, BytesUp: c.BytesUp - o.BytesUp}
}

// Counts returns the counters now.
func (p *Proxy) Counts() Counts {
	return Counts{Accepts: p.accepts.Load(), BytesDown: p.down.Load(), BytesUp: p.up.Load()}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, u) {
			return
		}
		p.wg.Add(2)
		go p.pipe(u, c, &p.up)
		go p.pipe(c, u, &p.down)
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, counting into n, and closes both ends when src ends.
func (p *Proxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer p.wg.Done()
	_, _ = io.Copy(countingWriter{dst, n}, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	k, err := c.w.Write(b)
	c.n.Add(int64(k))
	return k, err
}

// Close stops accepting, drops every forwarded connection and waits for the copies.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
