package sim

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// benchSite500k is a 500,000-client site at 300 s whose scheduler runs (real
// clock), for the server-side page benchmarks.
func benchSite500k(b *testing.B) *Site {
	b.Helper()
	return startSite(b, Options{Clients: 500_000, Heartbeat: 300 * time.Second})
}

// serveComputers runs one GET computers as handleComputers does (no TLS, no auth)
// and returns the reply's size and how long the model lock was held.
func serveComputers(b *testing.B, s *Site, query string) (int, time.Duration) {
	req := httptest.NewRequest(http.MethodGet, "/sepm/api/v1/computers?"+query, nil)
	q, err := parseComputerQuery(req.URL.Query())
	if err != nil {
		b.Fatal(err)
	}
	w := &countingWriter{h: http.Header{}}
	t0 := time.Now()
	page, err := s.model().computersPage(q, "")
	hold := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	s.model().writeComputerPage(w, page)
	return w.n, hold
}

// countingWriter is a ResponseWriter that counts the bytes and drops them.
type countingWriter struct {
	h      http.Header
	n      int
	status int
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
func (w *countingWriter) WriteHeader(s int) { w.status = s }

// BenchmarkComputersPage500k measures the server side of GET computers at 500,000
// clients (300 s heartbeat, scheduler running): one op is one page of 1000
// records, the pages of a full sweep in turn ("sweep"), or of a poll for the
// clients that checked in during the last 30 s, about 10% of the fleet
// ("incremental"); full records, or reduced ones ("-reduced": verbose=true, what
// the bot reads). It reports the CPU per page (process user+sys time: noisy
// on a shared machine), the reply bytes per page and the longest model-lock hold
// of a page (the time the heartbeats wait for it).
func BenchmarkComputersPage500k(b *testing.B) {
	s := benchSite500k(b)
	for _, tc := range []struct {
		name  string
		query func() string
	}{
		{"sweep", func() string { return "" }},
		{"incremental", func() string {
			return "lastUpdate=" + strconv.FormatInt(time.Now().Add(-30*time.Second).UnixMilli(), 10)
		}},
		{"sweep-reduced", func() string { return "verbose=true" }},
		{"incremental-reduced", func() string {
			return "verbose=true&lastUpdate=" + strconv.FormatInt(time.Now().Add(-30*time.Second).UnixMilli(), 10)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var bytes, page, pages int
			var maxHold time.Duration
			q := tc.query()
			cpu0 := cpuTime()
			for b.Loop() {
				page++
				n, hold := serveComputers(b, s, q+"&pageSize=1000&pageIndex="+strconv.Itoa(page))
				maxHold = max(maxHold, hold)
				if n < 200 { // past the last page: start a new sweep
					page = 0
					q = tc.query()
					continue
				}
				bytes += n
				pages++
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1000, "cpu-ms/page")
			if pages > 0 {
				b.ReportMetric(float64(bytes)/float64(pages), "bytes/page")
			}
			b.ReportMetric(float64(maxHold.Microseconds())/1000, "max-lock-ms")
		})
	}
	b.Run("onlinestatus", func(b *testing.B) {
		m := s.model()
		cpu0 := cpuTime()
		for b.Loop() {
			_ = m.onlineStatus()
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/op")
	})
}
