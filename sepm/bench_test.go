package sepm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// FIGURES (filled in below, see "Measured").

// fakeSweep100k starts a TLS server that serves 100,000 computers (the example
// record of testdata, about 620 bytes: the size the simulator served before it
// sent full records) in pages of 1000 encoded once up front, so the figures are
// mostly the client's. It returns a logged-in client and the bytes of all pages.
func fakeSweep100k(b *testing.B) (*Client, int) {
	const total, size = 100_000, 1000
	items := fakeComputers(b, total)
	pages := make([][]byte, total/size)
	n := 0
	for i := range pages {
		p := map[string]any{
			"content": items[i*size : (i+1)*size], "firstPage": i == 0, "lastPage": i == len(pages)-1,
			"number": i, "numberOfElements": size, "size": size, "totalElements": total, "totalPages": len(pages),
		}
		var err error
		if pages[i], err = json.Marshal(p); err != nil {
			b.Fatal(err)
		}
		n += len(pages[i])
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
	return c, n
}

// BenchmarkComputersSweep100k reads 100,000 computers in pages of 1000 (requests,
// TLS, reading, decoding, paging checks, joining the result). Each sweep starts
// without a kept-alive connection; conns/sweep counts the ones it made.
func BenchmarkComputersSweep100k(b *testing.B) {
	c, n := fakeSweep100k(b)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	var d Stats
	for b.Loop() {
		c.CloseIdleConnections()
		before := c.Stats()
		got, err := c.Computers(b.Context(), ComputerQuery{})
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 100_000 {
			b.Fatalf("got %d computers, want 100000", len(got))
		}
		d = c.Stats().Sub(before)
	}
	b.ReportMetric(float64(d.BodyBytes)/1e6, "MB/sweep")
	b.ReportMetric(float64(d.Connections), "conns/sweep")
}

// BenchmarkSweepFloor100k is the floor of the sweep above: the same pages fetched
// raw over one connection and json.Unmarshal'ed into the slim struct.
func BenchmarkSweepFloor100k(b *testing.B) {
	c, n := fakeSweep100k(b)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	var r FloorResult
	for b.Loop() {
		c.CloseIdleConnections()
		var err error
		if r, err = c.SweepFloor(b.Context(), ComputerQuery{}); err != nil {
			b.Fatal(err)
		}
		if r.Computers != 100_000 {
			b.Fatalf("floor decoded %d computers, want 100000", r.Computers)
		}
	}
	b.ReportMetric(float64(r.Bytes)/1e6, "MB/sweep")
	b.ReportMetric(float64(r.Connections), "conns/sweep")
	b.ReportMetric(r.Fetch.Seconds(), "fetch-s")
}
