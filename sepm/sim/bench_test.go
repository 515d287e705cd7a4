package sim

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sepmbot/sepm"
)

// BenchmarkSweep100k measures the real client reading all 100,000 computers of a
// site (pageSize 1000) over HTTPS on loopback while the fleet checks in every 5 s.
func BenchmarkSweep100k(b *testing.B) {
	site := startSite(b, Options{Clients: 100_000, Heartbeat: 5 * time.Second})
	c, err := sepm.New(sepm.Config{URL: site.URL(), Username: "admin", Password: testPassword,
		Fingerprints: []string{site.APIFingerprint()}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if err := c.Login(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		all, err := c.Computers(ctx, sepm.ComputerQuery{PageSize: 1000})
		if err != nil {
			b.Fatal(err)
		}
		if len(all) != 100_000 {
			b.Fatalf("%d computers", len(all))
		}
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "computers/s")
}

// BenchmarkHeartbeats measures the model's cost per check-in (no network): 100,000
// clients at 5 s, driven by the step function on a fake clock.
func BenchmarkHeartbeats(b *testing.B) {
	m, clk := benchModel(b, 100_000, 5*time.Second)
	start := m.checkins
	for b.Loop() {
		clk.set(clk.now().Add(10 * time.Millisecond))
		m.mu.Lock()
		m.stepLocked(clk.now())
		m.mu.Unlock()
	}
	n := m.checkins - start
	if n > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/checkin")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmRSS reads the resident set size from /proc/self/status, in bytes.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// TestSoak100k holds 100,000 clients at a 5 s heartbeat for ~30 s (SEPMBOT_SOAK=1;
// SEPMBOT_SOAK_SECONDS overrides the length) and reports the process's CPU (user+sys
// time / wall time) and RSS. The budget is under one core and under 500 MB.
func TestSoak100k(t *testing.T) {
	soak(t, 100_000, 5*time.Second, 30, 500<<20, 18_000)
}

// TestSoak500k holds 500,000 clients at SEPM's default 300 s heartbeat for ~60 s
// (SEPMBOT_SOAK=1; SEPMBOT_SOAK_SECONDS overrides the length; SEPMBOT_SOAK_STATE=1
// adds a state file, written every second as `sepmbot sim --state` does) and
// reports start-up time and CPU, steady CPU (user+sys time / wall time) and RSS.
// The budget is under one core and under 1 GB.
func TestSoak500k(t *testing.T) {
	soak(t, 500_000, 300*time.Second, 60, 1<<30, 1_500)
}

func soak(t *testing.T, clients int, hb time.Duration, secs int, rssBudget int64, minRate float64) {
	if os.Getenv("SEPMBOT_SOAK") != "1" {
		t.Skipf("set SEPMBOT_SOAK=1 to run the %d-client soak", clients)
	}
	if v, err := strconv.Atoi(os.Getenv("SEPMBOT_SOAK_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	o := Options{Clients: clients, Heartbeat: hb}
	if os.Getenv("SEPMBOT_SOAK_STATE") == "1" {
		o.StateFile = filepath.Join(t.TempDir(), "sim.state")
	}
	runtime.GC()
	startCPU, startWall := cpuTime(), time.Now()
	site := startSite(t, o)
	t.Logf("start-up: %s wall, %s CPU, RSS %.1f MB", time.Since(startWall).Round(time.Millisecond),
		(cpuTime() - startCPU).Round(time.Millisecond), float64(vmRSS())/(1<<20))
	// Let the first round of check-ins (spread over one heartbeat) start.
	time.Sleep(2 * time.Second) // measurement warm-up, not a wait for a condition
	m := site.model()
	m.mu.Lock()
	c0 := m.checkins
	m.mu.Unlock()
	cpu0, wall0 := cpuTime(), time.Now()
	var peak int64
	end := wall0.Add(time.Duration(secs) * time.Second)
	for time.Now().Before(end) {
		time.Sleep(time.Second) // sampling interval of the measurement
		peak = max(peak, vmRSS())
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	m.mu.Lock()
	n := m.checkins - c0
	m.mu.Unlock()
	f := site.Fleet()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cores := cpu.Seconds() / wall.Seconds()
	t.Logf("%d clients at %s for %s: CPU %.3f cores (%s user+sys), RSS peak %.1f MB, heap in use %.1f MB, %d check-ins (%.0f/s), fleet ok=%d orphaned=%d",
		clients, hb, wall.Round(time.Millisecond), cores, cpu.Round(time.Millisecond), float64(peak)/(1<<20), float64(ms.HeapInuse)/(1<<20),
		n, float64(n)/wall.Seconds(), f.OK, f.Orphaned)
	// The lock probe wakes every millisecond: it runs after the CPU window.
	probe := probeLock(t, m)
	time.Sleep(10 * time.Second) // the probe's window
	t.Logf("model lock: longest wait to take it over 10 s %s (the heartbeats wait as long)", probe().Round(10*time.Microsecond))
	if os.Getenv("SEPMBOT_SOAK_SWEEP") == "1" {
		soakSweep(t, site, clients)
	}
	if cores >= 1 {
		t.Errorf("CPU %.3f cores, budget < 1", cores)
	}
	if peak >= rssBudget {
		t.Errorf("RSS %d MB, budget < %d MB", peak>>20, rssBudget>>20)
	}
	if rate := float64(n) / wall.Seconds(); rate < minRate {
		t.Errorf("only %.0f check-ins/s, want at least %.0f", rate, minRate)
	}
}

// probeLock takes the model lock every millisecond until the test ends and
// returns a function that reports the longest wait so far (and starts anew).
func probeLock(t *testing.T, m *model) func() time.Duration {
	var worst atomic.Int64
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Millisecond) // the probe's sampling interval
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			m.mu.Lock()
			w := time.Since(t0)
			m.mu.Unlock()
			if int64(w) > worst.Load() {
				worst.Store(int64(w))
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	return func() time.Duration { return time.Duration(worst.Swap(0)) }
}

// soakSweep reads every computer over HTTPS, pageSize 1000, on one keep-alive
// connection, bodies read to the end and discarded (the client decodes nothing),
// and reports the wall time, the process CPU (mostly the server's; the client's
// share is TLS and reading), the bytes, the connections the API accepted and the
// longest model-lock wait during the sweep.
func soakSweep(t *testing.T, site *Site, clients int) {
	c := rawClient(site)
	conns0 := site.Connections()
	tok := rawLogin(t, site, c)
	probe := probeLock(t, site.model())
	cpu0, wall0 := cpuTime(), time.Now()
	var total int64
	pages := 0
	for page := 1; ; page++ {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
			site.URL()+"/sepm/api/v1/computers?pageSize=1000&pageIndex="+strconv.Itoa(page), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d %v", page, resp.StatusCode, err)
		}
		total += n
		if n < 200 {
			break
		}
		pages++
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	t.Logf("sweep of %d clients: %d pages, %.1f MB in %s, process CPU %s (%.2f ms/page), %d connections (the log-in's included), longest lock wait %s",
		clients, pages, float64(total)/(1<<20), wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/1000/float64(pages), site.Connections()-conns0, probe().Round(10*time.Microsecond))
	if pages != (clients+999)/1000 {
		t.Errorf("%d pages for %d clients", pages, clients)
	}
}

// benchModel is a model of n clients at heartbeat hb on a fake clock (no network,
// no scheduler): the benchmarks drive it with step.
func benchModel(b *testing.B, n int, hb time.Duration) (*model, *fakeClock) {
	b.Helper()
	o, err := Options{Clients: n, Heartbeat: hb, Password: "x", Logger: quietLogger()}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)}
	m, err := newModel(o, clk.now)
	if err != nil {
		b.Fatal(err)
	}
	return m, clk
}
