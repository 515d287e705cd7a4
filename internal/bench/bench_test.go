package bench

import (
	"io"
	"net"
	"os"
	"testing"
)

// TestProxyCounts: the proxy forwards both ways and counts connections and bytes.
func TestProxyCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4)
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				_, _ = c.Write(make([]byte, 1000)) // the reply
			}()
		}
	}()
	p, err := NewProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 2 {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, c); err != nil || n != 1000 {
			t.Fatalf("read %d bytes through the proxy (%v), want 1000", n, err)
		}
		c.Close()
	}
	got := p.Counts()
	if got.Accepts != 2 || got.BytesDown != 2000 || got.BytesUp != 8 {
		t.Fatalf("counts %+v, want 2 connections, 2000 bytes down, 8 up", got)
	}
	if d := got.Sub(Counts{Accepts: 1, BytesDown: 1000, BytesUp: 4}); d != (Counts{1, 1000, 4}) {
		t.Fatalf("Sub = %+v", d)
	}
}

// TestProcReadings: this process has used some CPU and holds some memory.
func TestProcReadings(t *testing.T) {
	cpu, err := CPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 0 {
		t.Fatalf("CPU %v s", cpu)
	}
	m, err := MemoryOf(0)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("memory %+v: want RSS > 0 and peak >= RSS", m)
	}
	if _, err := MemoryOf(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
