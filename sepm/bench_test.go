package sepm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkComputersSweep100k reads 100,000 computers in pages of 1000 from a TLS
// server that serves pages encoded once up front, so the figure is mostly the
// client: requests, TLS, JSON decoding and paging.
func BenchmarkComputersSweep100k(b *testing.B) {
	const total, size = 100_000, 1000
	items := fakeComputers(b, total)
	pages := make([][]byte, total/size)
	for i := range pages {
		p := map[string]any{
			"content": items[i*size : (i+1)*size], "firstPage": i == 0, "lastPage": i == len(pages)-1,
			"number": i, "numberOfElements": size, "size": size, "totalElements": total, "totalPages": len(pages),
		}
		var err error
		if pages[i], err = json.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
	f := newFake(b)
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		idx, _ := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		if idx < 1 || idx > len(pages) {
			writeRaw(w, http.StatusOK, []byte(`{"content":[],"lastPage":true}`))
			return
		}
		writeRaw(w, http.StatusOK, pages[idx-1])
	})
	c := newTestClient(b, f, nil)
	if err := c.Login(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pages[0]) * len(pages)))
	b.ReportAllocs()
	var d Stats
	for b.Loop() {
		c.CloseIdleConnections() // each sweep pays for its handshake
		before := c.Stats()
		got, err := c.Computers(b.Context(), ComputerQuery{})
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != total {
			b.Fatalf("got %d computers, want %d", len(got), total)
		}
		d = c.Stats().Sub(before)
	}
	b.ReportMetric(float64(d.BodyBytes)/1e6, "MB/sweep")
	b.ReportMetric(float64(d.Connections), "conns/sweep")
}
