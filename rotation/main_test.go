package rotation

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain: the end-to-end tests wait in real time on simulated heartbeats (about
// 12 s of CPU in 180 s of wall time), so more of them may wait at once than
// -parallel's default of GOMAXPROCS, unless -parallel was given.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set("8")
	}
	os.Exit(m.Run())
}
