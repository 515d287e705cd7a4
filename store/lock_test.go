package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenLockedSameProcess(t *testing.T) {
	_, path := openTemp(t)
	db2, err := openWithin(t, path)
	if err == nil {
		db2.Close()
		t.Fatal("second Open of the same file succeeded")
	}
	assertLocked(t, err)
}

// openWithin runs Open and fails the test if it has not returned after a
// generous deadline: Open must give up (its own timeout is 2 s), never hang.
func openWithin(t *testing.T, path string) (*DB, error) {
	t.Helper()
	type result struct {
		db  *DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		db, err := Open(path)
		done <- result{db, err}
	}()
	select {
	case r := <-done:
		return r.db, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Open hung on a locked file")
		return nil, nil
	}
}

func assertLocked(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open error %v does not wrap ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "already running") {
		t.Errorf("Open error %q does not say \"already running\"", err)
	}
}

// holdEnv names the data file the helper process holds open.
const holdEnv = "SEPMBOT_STORE_TEST_HOLD"

// TestHelperHoldLock is not a test: run as a child process by
// TestOpenLockedAcrossProcesses, it opens the file, says "ready" and keeps it
// open until its stdin closes.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	db, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = db.Close()
	os.Exit(0)
}

func TestOpenLockedAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sepmbot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})

	// Wait for the child's readiness line: from then on it holds the lock.
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		line := lines.Text()
		if line == "ready" {
			ready = true
			break
		}
		if strings.HasPrefix(line, "error:") {
			t.Fatalf("helper: %s", line)
		}
	}
	if !ready {
		t.Fatalf("helper exited before holding the file: %v", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	db, err := openWithin(t, path)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded while another process holds the file")
	}
	assertLocked(t, err)

	// Once the other process lets go, Open succeeds.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatalf("Open after the holder exited: %v", err)
	}
	db.Close()
}
