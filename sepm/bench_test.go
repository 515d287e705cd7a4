package sepm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// Measured 2026-12-01 on the shared 2-core machine (go1.26, linux/amd64) while five
// other engineers built and tested: every figure is noisy (repeat runs differ by up
// to 2x), ratios of runs side by side are the firmer part. -count 3, ranges shown.
//
// Decoding one page of 1000 simulated computers into the slim Page[Computer]
// (BenchmarkDecodeComputerPage, simbench_test.go; quietest run, -benchtime 20x):
//
//	record                   decoder                       ns/op     B/op      allocs/op
//	full (3.3 MB/page)       encoding/json Unmarshal       21-22 ms  0.85 MB   10,022
//	                         encoding/json Decoder (old)   26-31 ms  9.2 MB    10,040
//	                         goccy/go-json (chosen)        2.7-3.1 ms 0.63-0.79 MB 9,010
//	reduced (0.8 MB/page)    encoding/json Unmarshal       6.1-8.1 ms 0.85 MB  10,022
//	                         encoding/json Decoder (old)   6.9-7.6 ms 2.9 MB   10,038
//	                         goccy/go-json (chosen)        0.87-0.91 ms 0.63-0.67 MB 9,010
//
// Also tried, not chosen: github.com/bytedance/sonic v1.15.5 (full 12-14 ms, 6 MB,
// 129,000 allocs; reduced 1.9-2.2 ms) and github.com/go-json-experiment/json
// v1.27.2 (full 37-44 ms, 25 MB; reduced 2.7-2.9 ms). encoding/json/v2 needs
// GOEXPERIMENT=jsonv2, which the build does not use. goccy/go-json v0.12.0 won
// clearly (7x encoding/json), agrees with it on every broken page tried
// (TestPageDecoderAgreesWithEncodingJSON; 435,000 fuzz inputs of FuzzPageDecoder)
// and copies its strings, so it decodes the pages; everything else stays on
// encoding/json. reflect.DeepEqual of two equal 1000-record pages (the old repeat
// check) costs 0.18-0.28 ms; it now runs only for pages whose first item has no key.
//
// Sweeps of 100,000 computers, pages of 1000, each sweep from a cold connection:
//
//	BenchmarkComputersSweep100k (fake, 620-byte example records, 61.75 MB/sweep):
//	  before (main addc3a7)  0.83-1.23 s/sweep, 417 MB and 1.47 M allocs/sweep, a connection per page
//	  now                    0.17-0.22 s/sweep,  57 MB and 0.89 M allocs/sweep, 1 connection/sweep
//	BenchmarkSweepFloor100k (same pages raw + json.Unmarshal): 0.51-0.76 s
//	BenchmarkSimSweep100k (simulator, floor measured in the same iteration):
//	  reduced records (verbose=true, 81.5 MB/sweep): sweep 0.48-0.64 s, floor 1.00-1.06 s, 0.45-0.63 x floor
//	  full records (328.7 MB/sweep):                 sweep 1.43-1.54 s, floor 3.80-4.56 s, 0.34-0.38 x floor
//	  1 connection per sweep in every run.
//	sepm/sim BenchmarkSweep100k (reduced, fleet checking in every 5 s):
//	  before 1.27-1.49 s/sweep, now 0.48-0.80 s/sweep.
//
// Commands: go test -run '^$' -bench 'ComputersSweep100k|SweepFloor100k|DecodeComputerPage' -benchtime 5x -count 3 ./sepm/
// and go test -run '^$' -bench SimSweep100k -benchtime 3x -count 3 ./sepm/ (about a minute).

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
