package sim

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkStateSave500k measures one write of the state file at 500,000 clients
// (what `sepmbot sim --state` does every StateInterval, 1 s by default): the
// model-lock hold of the snapshot, the CPU of the whole save (process user+sys
// time: noisy on a shared machine) and the bytes written.
func BenchmarkStateSave500k(b *testing.B) {
	site := startSite(b, Options{Clients: 500_000, Heartbeat: 300 * time.Second, StateFile: filepath.Join(b.TempDir(), "sim.state"),
		StateInterval: time.Hour}) // only the benchmark saves
	var maxHold time.Duration
	cpu0 := cpuTime()
	var size int
	var last *snapshot
	for b.Loop() {
		m := site.model()
		t0 := time.Now()
		m.mu.Lock()
		sn := m.snapshotLocked(last)
		m.mu.Unlock()
		maxHold = max(maxHold, time.Since(t0))
		if err := site.state.save(sn); err != nil {
			b.Fatal(err)
		}
		last = sn
		_ = site.state.db.View(func(tx *bolt.Tx) error {
			size = len(tx.Bucket([]byte(stateBucket)).Get([]byte(stateKey)))
			return nil
		})
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/save")
	b.ReportMetric(float64(maxHold.Microseconds())/1000, "max-lock-ms")
	b.ReportMetric(float64(size), "bytes")
}
