package sim

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
	o, err := Options{Clients: 100_000, Heartbeat: 5 * time.Second, Password: "x", Logger: quietLogger()}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)}
	m, err := newModel(o, clk.now)
	if err != nil {
		b.Fatal(err)
	}
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
