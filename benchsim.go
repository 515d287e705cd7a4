package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sepmbot/internal/bench"
)

// simChild is the simulator the bench runs as a child process (`sepmbot sim`).
type simChild struct {
	cmd         *exec.Cmd
	apiAddr     string // host:port of the REST API
	fingerprint string // SHA-256 of the API certificate
	stderr      *tailBuffer
	done        chan struct{}
	stopOnce    sync.Once
}

// startSim starts this binary's `sim` command at the bench's size and reads its
// banner for the API address and the certificate to pin. The clients are the
// realistic ones `sepmbot sim` makes by default (jitter, failed policy downloads,
// roaming laptops).
func (c *BenchCmd) startSim(ctx context.Context, dir string) (*simChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: finding this binary to run the simulator: %w", err)
	}
	pwFile := filepath.Join(dir, "sim-password")
	if err := os.WriteFile(pwFile, []byte(benchPassword), 0o600); err != nil {
		return nil, err
	}
	args := []string{"sim", "--clients", strconv.Itoa(c.Clients), "--heartbeat", c.Heartbeat.String(),
		"--roaming", strconv.Itoa(c.Roaming), "--policy-fetch", strconv.FormatFloat(c.PolicyFetch, 'g', -1, 64),
		"--listen", "127.0.0.1:0", "--password-file", pwFile, "--log-level", "warn"}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), c.simEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // never outlive the bench
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	ch := &simChild{cmd: cmd, stderr: &tailBuffer{max: 4 << 10}, done: make(chan struct{})}
	cmd.Stderr = ch.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting the simulator: %w", err)
	}
	go func() { _ = cmd.Wait(); close(ch.done) }()
	banner := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			for i := 0; i+1 < len(f); i++ {
				switch f[i] {
				case "--sepm-url":
					ch.apiAddr = strings.TrimPrefix(f[i+1], "https://")
				case "--sepm-fingerprint":
					ch.fingerprint = f[i+1]
				}
			}
			if !found && ch.apiAddr != "" && ch.fingerprint != "" {
				found = true
				banner <- nil
			}
		}
		if !found {
			banner <- errors.New("the simulator ended without printing its address")
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err = <-banner:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		ch.stop()
		<-ch.done
		return nil, fmt.Errorf("bench: simulator: %w: %s", err, strings.TrimSpace(ch.stderr.String()))
	}
	return ch, nil
}

func (s *simChild) pid() int { return s.cmd.Process.Pid }

// cpuOver is the simulator's CPU use in cores over a window of wall time.
func (s *simChild) cpuOver(ctx context.Context, window time.Duration) (float64, error) {
	c0, err := bench.CPUSeconds(s.pid())
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.done:
		return 0, fmt.Errorf("bench: the simulator ended: %s", strings.TrimSpace(s.stderr.String()))
	case <-time.After(window):
	}
	c1, err := bench.CPUSeconds(s.pid())
	if err != nil {
		return 0, err
	}
	return (c1 - c0) / time.Since(t0).Seconds(), nil
}

// stop ends the simulator (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (s *simChild) stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// tailBuffer keeps the last max bytes written (the child's stderr, for errors).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
